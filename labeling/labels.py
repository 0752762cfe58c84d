"""Build the labels table of a folder tree: scan, label from folder names, check against annotations, filter, split.

make_labels() returns the table (columns path, label, group, split [, official_label] [, category_type],
sorted by path) and a JSON-ready summary of every count, drop and warning, for the CLI to print and save.
"""
import os

import numpy as np
import pandas as pd

from common.errors import UsageError
from labeling import split as splitting
from labeling.annotations import read_category_images, read_partition
from labeling.choices import SOURCES, SPLIT_METHODS, UNKNOWN_ACTIONS
from labeling.categories import builtin_categories, read_categories
from labeling.names import label_from_folder
from common.schema import CATEGORY_TYPE, COLUMNS, IMAGE_EXTENSIONS, SPLITS
from labeling.scan import scan_images
from labeling.summary import label_counts
from labeling.verify import find_undecodable

CATEGORY_LIST = "Anno/list_category_cloth.txt"
CATEGORY_IMAGES = "Anno/list_category_img.txt"
PARTITION = "Eval/list_eval_partition.txt"
EXAMPLES = 3  # example paths or folders quoted in a warning


def make_labels(root, source="suffix", split="auto", val_frac=0.1, test_frac=0.1, seed=0, min_images=0,
                unknown="keep", verify=False, progress=None):
    """Return (table, summary) for the tree under `root`; progress(message) receives periodic counts.

    Raises UsageError for a user's mistake: a bad root or option, missing or malformed annotation files.
    """
    _check_options(source, split, val_frac, test_frac, seed, min_images, unknown)
    summary = {"root": str(root), "source": source, "warnings": [], "dropped": {}}
    table = _scan(root, summary, progress)
    categories, category_file = _categories(root)
    if source != "suffix":
        table = _official_labels(root, table, categories, source, summary)
    if category_file and source != "official":
        table = _unknown_labels(table, categories, unknown, summary)
    if verify:
        table = _drop_undecodable(root, table, summary, progress)
    if min_images:
        table = _drop_small_labels(table, min_images, summary)
    types = table["label"].map(dict(categories))
    if types.notna().any():
        table[CATEGORY_TYPE] = types.fillna("")
    table = _split(root, table, split, val_frac, test_frac, seed, summary)
    table.insert(0, "path", os.path.join(str(root), "") + table.pop("rel"))
    extras = [column for column in ("official_label", CATEGORY_TYPE) if column in table]
    table = table[list(COLUMNS) + extras].reset_index(drop=True)
    summary["rows"] = len(table)
    summary["labels"] = label_counts(table)
    return table, summary


def _check_options(source, split, val_frac, test_frac, seed, min_images, unknown):
    """Reject option values no tree could satisfy, before any scanning."""
    for name, value, choices in (("source", source, SOURCES), ("split", split, SPLIT_METHODS),
                                 ("unknown", unknown, UNKNOWN_ACTIONS)):
        if value not in choices:
            raise UsageError(f"--{name} must be one of {', '.join(choices)}, not {value!r}")
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise UsageError(f"--val-frac {val_frac} and --test-frac {test_frac} must each be in [0, 1) and sum to "
                         "less than 1, to leave images for training")
    if seed < 0:
        raise UsageError(f"--seed must be 0 or more, not {seed}")
    if min_images < 0:
        raise UsageError(f"--min-images must be 0 or more, not {min_images}")


def _scan(root, summary, progress):
    """Scan `root` into a table of rel (path below root), label and group, recording the scan's counts."""
    if not os.path.exists(root):
        raise UsageError(f"{root} does not exist; give the folder that holds the images")
    if not os.path.isdir(root):
        raise UsageError(f"{root} is not a folder; give the folder that holds the images")
    report = None if progress is None else (
        lambda scan: progress(f"scanning: {scan.n_files:,} files in {scan.n_folders:,} folders"))
    try:
        scan = scan_images(root, report)
    except OSError as e:
        raise UsageError(f"cannot read {root}: {e.strerror or e}") from None
    summary.update(folders=scan.n_folders, files=scan.n_files, images_found=scan.n_images,
                   hidden_skipped=scan.n_hidden, non_images_skipped=scan.n_other, unreadable_folders=scan.unreadable)
    if scan.unreadable:
        _warn(summary, f"{len(scan.unreadable)} folder(s) could not be read and were skipped, "
                       f"e.g. {_examples(scan.unreadable)}")
    if not scan.n_images:
        raise UsageError(f"{root} holds no images ({' '.join('.' + e for e in sorted(IMAGE_EXTENSIONS))}): "
                         f"{scan.n_other} other file(s) and {scan.n_hidden} hidden entries in "
                         f"{scan.n_folders} folder(s)")
    _check_utf8_names(root, scan)
    return _table_from_scan(root, scan)


def _check_utf8_names(root, scan):
    """Refuse image paths that are not valid UTF-8: the labels CSV (UTF-8) could not hold them."""
    for rel, images in scan.folders:
        try:
            "\0".join([rel, *images]).encode("utf-8")
        except UnicodeEncodeError:
            bad = next(name for name in [rel, *images] if not _encodes(name))
            where = os.path.join(root, rel, bad) if bad != rel else os.path.join(root, rel)
            raise UsageError(f"{where.encode('utf-8', 'surrogateescape')!r}: name is not valid UTF-8; rename it "
                             f"(e.g. convmv -f latin1 -t utf8) so the labels CSV can hold it") from None


def _encodes(name):
    """True when `name` encodes as UTF-8 (os.scandir keeps undecodable bytes as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _table_from_scan(root, scan):
    """One row per image, sorted by rel (path below root): label from its folder's name, group = that folder."""
    root_name = os.path.basename(os.path.abspath(root))
    rels, labels, groups = [], [], []
    for folder, names in scan.folders:
        prefix = folder + "/" if folder else ""
        rels.extend([prefix + name for name in names])
        labels.extend([label_from_folder(folder.rpartition("/")[2] or root_name)] * len(names))
        groups.extend([folder or "."] * len(names))
    # sorted once here, so every later step, example and the CSV follow path order, not the disk's listing order
    return pd.DataFrame({"rel": rels, "label": labels, "group": groups}).sort_values("rel", ignore_index=True)


def _categories(root):
    """([(name, type), ...], True) from root's official category list, else (the built-in list, False)."""
    path = os.path.join(root, CATEGORY_LIST)
    if os.path.isfile(path):
        return read_categories(path), True
    return builtin_categories(), False


def _official_labels(root, table, categories, source, summary):
    """Take labels from the annotations (`official`) or add them as official_label and report agreement (`check`)."""
    listing = os.path.join(root, CATEGORY_IMAGES)
    if not (os.path.isfile(listing) and os.path.isfile(os.path.join(root, CATEGORY_LIST))):
        raise UsageError(f"--source {source} needs {CATEGORY_IMAGES} and {CATEGORY_LIST} under {root}; "
                         "use --source suffix for a tree without DeepFashion's annotation files")
    listed = read_category_images(listing, len(categories))
    codes = table["rel"].map(listed)
    known = codes.notna().to_numpy()
    official = np.full(len(table), "", dtype=object)
    official[known] = np.array([name for name, _ in categories], dtype=object)[codes[known].astype(int) - 1]
    on_disk = set(table["rel"].tolist())
    missing = sorted(name for name in listed if name not in on_disk)
    unlisted = table.loc[~known, "rel"].tolist()
    summary["check"] = {"listed": len(listed), "missing_on_disk": len(missing), "not_in_annotations": len(unlisted),
                        "missing_examples": missing[:EXAMPLES], "unlisted_examples": unlisted[:EXAMPLES]}
    if missing:
        _warn(summary, f"{len(missing):,} image(s) listed in {CATEGORY_IMAGES} are missing on disk, "
                       f"e.g. {_examples(missing)}")
    if source == "official":
        if unlisted:
            summary["dropped"]["not_in_annotations"] = len(unlisted)
            _warn(summary, f"dropped {len(unlisted):,} image(s) on disk that {CATEGORY_IMAGES} does not list, "
                           f"e.g. {_examples(unlisted)}")
        table = table.loc[known].assign(label=official[known])
        return _nonempty(root, table, f"dropping images not listed in {CATEGORY_IMAGES}")
    if unlisted:
        _warn(summary, f"{len(unlisted):,} image(s) on disk are not in {CATEGORY_IMAGES} (official_label left "
                       f"empty), e.g. {_examples(unlisted)}")
    table["official_label"] = official
    _report_agreement(table[known], summary)
    return table


def _report_agreement(table, summary):
    """Count images whose folder label agrees with the official one; list the folders that disagree."""
    differ = table[table["label"] != table["official_label"]]
    folders = differ.groupby(["group", "label", "official_label"]).size().reset_index(name="images")
    summary["check"].update(agree=int(len(table) - len(differ)), disagree=int(len(differ)),
                            disagreeing_folders=folders.to_dict("records"))


def _unknown_labels(table, categories, unknown, summary):
    """Keep (with a warning), drop or refuse labels that the official category list does not know."""
    is_unknown = ~table["label"].isin({name for name, _ in categories})
    if not is_unknown.any():
        return table
    notes = [f"{label!r} ({len(rows):,} images, e.g. {_examples(sorted(set(rows['group'])))})"
             for label, rows in table[is_unknown].groupby("label", sort=True)]
    if unknown == "error":
        raise UsageError(f"labels not in {CATEGORY_LIST}: {'; '.join(notes)}; rename those folders or use "
                         "--unknown keep|drop")
    for note in notes:
        _warn(summary, f"unknown label {note} is not in {CATEGORY_LIST}: "
                       f"{'kept' if unknown == 'keep' else 'dropped'} (--unknown {unknown})")
    summary["unknown_labels"] = sorted(table.loc[is_unknown, "label"].unique().tolist())
    if unknown == "keep":
        return table
    summary["dropped"]["unknown_label"] = int(is_unknown.sum())
    return _nonempty(summary["root"], table[~is_unknown], "--unknown drop")


def _drop_undecodable(root, table, summary, progress):
    """Decode every image; drop and report those that fail."""
    report = None if progress is None else (lambda done, total: progress(f"verifying: {done:,} of {total:,} images"))
    paths = (os.path.join(str(root), "") + table["rel"]).tolist()
    bad = find_undecodable(paths, progress=report)
    if not bad:
        return table
    summary["dropped"]["undecodable"] = [{"path": path, "reason": reason} for path, reason in bad]
    for path, reason in bad:
        _warn(summary, f"dropped {path}: cannot be decoded ({reason})")
    undecodable = {path for path, _ in bad}
    return _nonempty(root, table[[path not in undecodable for path in paths]], "--verify")


def _drop_small_labels(table, min_images, summary):
    """Drop labels with fewer than `min_images` images, naming each."""
    counts = table["label"].value_counts()
    small = counts[counts < min_images].sort_index()
    if small.empty:
        return table
    summary["dropped"]["below_min_images"] = {label: int(n) for label, n in small.items()}
    listed = ", ".join(f"{label} ({n})" for label, n in small.items())
    _warn(summary, f"dropped {len(small)} label(s) with fewer than {min_images} images (--min-images): {listed}")
    return _nonempty(summary["root"], table[~table["label"].isin(small.index)], f"--min-images {min_images}")


def _split(root, table, method, val_frac, test_frac, seed, summary):
    """Add the split column by the chosen method (auto: folders on disk > official partition > group)."""
    by_folder = splitting.folder_splits(table["group"]) if method in ("auto", "folders") else None
    partition = os.path.join(root, PARTITION)
    if method == "folders" and by_folder is None:
        raise UsageError(f"--split folders needs every image in a class folder under {root}'s train/, "
                         "val/ (or validation/) and test/ folders; use --split group or auto")
    if method == "folders" or (method == "auto" and by_folder is not None and splitting.is_split_on_disk(by_folder)):
        used, table["split"] = "folders", by_folder
    elif method == "official" or (method == "auto" and os.path.isfile(partition)):
        used, table = "official", _official_split(root, table, partition, summary)
    elif method in ("auto", "group"):
        used, table["split"] = "group", splitting.group_splits(table, val_frac, test_frac, seed)
        summary.update(seed=seed, val_frac=val_frac, test_frac=test_frac)
    else:
        used, table["split"] = "none", ""
    summary["split"] = used
    if used != "none":
        _report_missing_splits(table, used, val_frac, test_frac, summary)
    return table


def _official_split(root, table, partition, summary):
    """Splits from Eval/list_eval_partition.txt; images it does not list are dropped with a warning."""
    if not os.path.isfile(partition):
        raise UsageError(f"--split official needs {PARTITION} under {root}; use --split group or auto")
    splits = table["rel"].map(read_partition(partition))
    unlisted = table.loc[splits.isna(), "rel"].tolist()
    if unlisted:
        summary["dropped"]["not_in_partition"] = len(unlisted)
        _warn(summary, f"dropped {len(unlisted):,} image(s) that {PARTITION} does not list, "
                       f"e.g. {_examples(unlisted)}")
    return _nonempty(root, table.assign(split=splits)[splits.notna()], f"matching {PARTITION}")


def _report_missing_splits(table, used, val_frac, test_frac, summary):
    """Warn about each label absent from a split that should hold it, saying where its images went."""
    if used == "group":
        expected = [s for s, frac in zip(SPLITS, (1.0, val_frac, test_frac)) if frac > 0]
    else:
        expected = [s for s in SPLITS if (table["split"] == s).any()]
    counts = pd.crosstab(table["label"], table["split"]).reindex(columns=list(SPLITS), fill_value=0)
    groups = table.groupby("label")["group"].nunique()
    for label, row in counts.iterrows():
        absent = [s for s in expected if row[s] == 0]
        if absent:
            where = ", ".join(f"{s} {row[s]}" for s in SPLITS if row[s])
            _warn(summary, f"label {label!r} has no images in {' or '.join(absent)}: its {row.sum()} image(s) in "
                           f"{groups[label]} group(s) went to {where}")


def _nonempty(root, table, step):
    """`table`, or a UsageError when `step` left no images at all."""
    if table.empty:
        raise UsageError(f"no images of {root} are left after {step}")
    return table


def _warn(summary, message):
    """Record a warning for the summary."""
    summary["warnings"].append(message)


def _examples(items):
    """The first few items, quoted, for a one-line message."""
    shown = ", ".join(str(item) for item in list(items)[:EXAMPLES])
    return shown + (", ..." if len(items) > EXAMPLES else "")
