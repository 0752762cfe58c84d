"""--hierarchy: the parent (coarse class) of every label, and the rows each sub-model of a hierarchical run sees.

The mapping comes from the labels CSV's category_type column or from a mapping CSV with columns label,parent.
A hierarchical run trains a coarse model of the parents (in `coarse/`) and one model per parent that has
more than one label (in a folder named after the parent); a parent with one label needs no model.
"""
import os
import re
from pathlib import Path

from cnn.data.labels_csv import check_training_splits
from cnn.runfolder import BACKUP, CONFIG, read_json
from common.errors import UsageError
from common.hashing import sha256_file
from common.schema import CATEGORY_TYPE

FLAT = "none"  # --hierarchy none: one flat model
COARSE = "coarse"  # the sub-folder of the parents' model
MAPPING_COLUMNS = ("label", "parent")
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.+-]*")  # a parent's name, used as its model's folder
RESERVED = (COARSE, BACKUP, "tensorboard")  # folder names a run folder already uses
SHOW = 8  # offending names shown in a message


def option_problem(value):
    """Why `--hierarchy VALUE` cannot work, or None: it must be none, category_type or an existing file."""
    if value in (FLAT, CATEGORY_TYPE) or os.path.isfile(value):
        return None
    return (f"must be {FLAT}, {CATEGORY_TYPE} (the labels CSV's column) or a mapping CSV file with columns "
            f"{','.join(MAPPING_COLUMNS)} (file not found)")


def read_mapping(path):
    """{label: parent} from a mapping CSV; a bad header, an empty cell or a label with two parents is refused."""
    import pandas as pd

    source = f"--hierarchy {path}"
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UsageError(f"{source}: not a readable CSV ({str(e).splitlines()[0]})") from None
    if [c.strip() for c in df.columns] != list(MAPPING_COLUMNS):
        raise UsageError(f"{source}: the header must be {','.join(MAPPING_COLUMNS)}, not "
                         f"{','.join(map(str, df.columns))}; one row per label naming its parent")
    blank = df.index[(df.iloc[:, 0].str.strip() == "") | (df.iloc[:, 1].str.strip() == "")]
    if len(blank):
        raise UsageError(f"{source}: {len(blank)} row(s) with an empty label or parent (line(s) "
                         f"{', '.join(str(i + 2) for i in blank[:SHOW])}); fill or drop them")
    return pairs(df.iloc[:, 0], df.iloc[:, 1], source)


def pairs(labels, parents, source):
    """{label: parent} from two columns (cells stripped); a label given two different parents is refused."""
    mapping, conflicts = {}, set()
    for label, parent in zip(labels, parents):
        label, parent = str(label).strip(), str(parent).strip()
        if mapping.setdefault(label, parent) != parent:
            conflicts.add(label)
    if conflicts:
        raise UsageError(f"{source}: label(s) with more than one parent: {', '.join(sorted(conflicts)[:SHOW])}; "
                         f"give each label one parent")
    return mapping


def resolve_mapping(df, hierarchy, source):
    """{label: parent} for every label of the labels DataFrame `df` (read from `source`), sorted by label."""
    if hierarchy == CATEGORY_TYPE:
        if CATEGORY_TYPE not in df:
            raise UsageError(f"--hierarchy {CATEGORY_TYPE}: {source} has no {CATEGORY_TYPE} column (make-labels "
                             f"writes it for DeepFashion's categories); give a mapping CSV with columns "
                             f"{','.join(MAPPING_COLUMNS)} instead")
        typed = df[df[CATEGORY_TYPE].astype(str).str.strip() != ""]
        mapping = pairs(typed["label"], typed[CATEGORY_TYPE], f"{source}'s {CATEGORY_TYPE} column")
    else:
        mapping = read_mapping(hierarchy)
    labels = sorted(set(df["label"]))
    missing = [label for label in labels if label not in mapping]
    if missing:
        raise UsageError(f"--hierarchy {hierarchy}: {len(missing)} label(s) of {source} have no parent: "
                         f"{', '.join(missing[:SHOW])}{' ...' if len(missing) > SHOW else ''}; "
                         f"add them to the mapping")
    resolved = {label: mapping[label] for label in labels}
    check_parents(resolved, hierarchy)
    return resolved


def check_parents(mapping, hierarchy):
    """A coarse model needs two parents or more, and each parent's name becomes a folder name."""
    parents = sorted(set(mapping.values()))
    if len(parents) < 2:
        raise UsageError(f"--hierarchy {hierarchy}: every label has the same parent ({', '.join(parents)}); a "
                         f"hierarchy needs at least 2 parents (or train a flat model)")
    bad = [p for p in parents if not FOLDER_NAME.fullmatch(p) or p in RESERVED or p.startswith("eval-")]
    if bad:
        raise UsageError(f"--hierarchy {hierarchy}: parent name(s) {', '.join(map(repr, bad))} cannot name a "
                         f"sub-folder; use letters, digits, spaces and _ . + - (not {', '.join(RESERVED)})")


def sub_models(mapping):
    """[(folder, parent or None for the coarse model), ...]: the coarse model first, then each parent with
    more than one label, sorted."""
    parents = sorted(set(mapping.values()))
    return [(COARSE, None)] + [(p, p) for p in parents if sum(v == p for v in mapping.values()) > 1]


def sub_frame(df, mapping, parent):
    """The rows a sub-model trains on: all of them labelled by parent (coarse), or one parent's rows only.

    Image paths become absolute, so the sub-model's labels CSV reads the same images from any folder.
    """
    if parent is None:
        rows = df.assign(label=df["label"].map(mapping))
    else:
        rows = df[df["label"].map(mapping) == parent].copy()
    rows["path"] = [os.path.abspath(p) for p in rows["path"]]
    return rows


def sub_frames(df, mapping, hierarchy, source):
    """{folder: rows} of every sub-model, each checked to be trainable (train and val rows, 2+ classes)."""
    frames = {}
    for folder, parent in sub_models(mapping):
        frames[folder] = sub_frame(df, mapping, parent)
        what = "the coarse model" if parent is None else f"the model of parent {parent!r}"
        check_training_splits(frames[folder], f"--hierarchy {hierarchy}: {what} ({source})")
    return frames


def is_hierarchical(run_dir):
    """True when `run_dir` holds the top-level record of a hierarchical run (its config.json says so)."""
    path = Path(run_dir) / CONFIG
    return path.is_file() and read_json(path).get("options", {}).get("hierarchy", FLAT) != FLAT


def wants_hierarchy(run_dir, typed):
    """Whether train-cnn's options or the run folder they point at make this a hierarchical run."""
    return typed.get("hierarchy", FLAT) != FLAT or (run_dir is not None and is_hierarchical(run_dir))


def mapping_record(hierarchy):
    """config.json's "hierarchy" entry: where the mapping came from, and the mapping file's SHA-256."""
    return {"source": hierarchy, "sha256": sha256_file(hierarchy) if hierarchy != CATEGORY_TYPE else None}


def mapping_differences(config, options):
    """The hierarchy mapping file as a difference when its content changed since the run recorded it."""
    recorded = config.get("hierarchy", {})
    if options.hierarchy in (FLAT, CATEGORY_TYPE) or recorded.get("source") != options.hierarchy:
        return []
    if sha256_file(options.hierarchy) == recorded.get("sha256"):
        return []
    return [f"the mapping CSV {options.hierarchy} (its sha256 differs from the one recorded)"]
