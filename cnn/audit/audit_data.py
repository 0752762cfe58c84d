"""audit-data: exact and near-duplicate images within and across splits, product groups that share images,
and odd images, read from a labels CSV (the dataset itself is never changed)."""
import os
import sys
import time
from multiprocessing.pool import ThreadPool
from pathlib import Path

from cnn.audit.fingerprints import fingerprint, oddities
from cnn.audit.near import exact_sets, merge, near_pairs
from cnn.data.labels_csv import read_labels
from cnn.runfolder import AUDIT_DATA
from common.atomic import write_csv, write_json
from common.console import writer
from common.destinations import check_report_outputs
from common.hashing import sha256_file

log = writer("audit-data")
PROGRESS_SECONDS = 5.0
SHEET_SETS = 12  # rows of the contact sheet: the worst sets
SHEET_MEMBERS = 6  # images shown per set


class Progress:
    """A line on stderr every PROGRESS_SECONDS: what is done, of how many, the rate and the time left.

    Our own rather than tqdm's bar: each report is one `audit-data: ...` line, the project's format for progress in
    a terminal, a log file and CI alike (a bar redraws itself with carriage returns); it is six lines."""

    def __init__(self, what):
        self.what, self.started = what, time.monotonic()
        self.last = self.started

    def __call__(self, done, total):
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS and done < total:
            rate = done / (now - self.started)
            log(f"{self.what}: {done:,} of {total:,} ({rate:.0f}/s, about {(total - done) / rate / 60:.1f} min left)")
            self.last = now


def fingerprints_of(paths, workers=None):
    """Every image's Fingerprint, decoded in parallel (Pillow releases the GIL), with progress on stderr."""
    progress, result = Progress("images fingerprinted"), []
    with ThreadPool(workers or os.cpu_count() or 1) as pool:
        for done, fp in enumerate(pool.imap(fingerprint, paths, chunksize=32), start=1):
            result.append(fp)
            progress(done, len(paths))
    return result


def describe_sets(df, sets, fingerprints, distances):
    """One row per member of each set: set id, kind, path, split, label, group, and its distance to the nearest
    other member (0: the same pixels; near copies: cnn.audit.near.aligned_differences, <= 1)."""
    import pandas as pd

    rows = []
    for number, members in enumerate(sets, start=1):
        exact = len({fingerprints[i].exact for i in members}) == 1
        for i in members:
            rows.append({"set": number, "kind": "exact" if exact else "near", "path": df.path.iloc[i],
                         "split": df.split.iloc[i], "label": df.label.iloc[i], "group": df.group.iloc[i],
                         "distance": 0.0 if exact else round(distances.get(i, 0.0), 4)})
    return pd.DataFrame(rows, columns=["set", "kind", "path", "split", "label", "group", "distance"])


def summarise(df, table, odd, seconds):
    """audit.json's figures: counts of sets, of leaks across splits, of label conflicts, of shared groups, odd
    images by kind (from odd_images.csv's table)."""
    by_set = table.groupby("set")
    return {
        "images": int(len(df)), "seconds": round(seconds, 1),
        "exact_sets": int((by_set["kind"].first() == "exact").sum()) if len(table) else 0,
        "near_sets": int((by_set["kind"].first() == "near").sum()) if len(table) else 0,
        "images_in_sets": int(len(table)),
        "sets_across_splits": int((by_set["split"].nunique() > 1).sum()) if len(table) else 0,
        "sets_with_two_labels": int((by_set["label"].nunique() > 1).sum()) if len(table) else 0,
        "sets_across_groups": int((by_set["group"].nunique() > 1).sum()) if len(table) else 0,
        "copies_to_drop_for_clean": int(len(table) - table["set"].nunique()) if len(table) else 0,
        "odd_images": {kind: int(n) for kind, n in odd["kinds"].str.split().explode().value_counts().items()},
    }


def clean_rows(df, table):
    """The labels CSV's rows with one member of each set kept (its train member when it has one, so copies
    leave val and test), every other member dropped."""
    if table.empty:
        return df
    order = {"train": 0, "val": 1, "test": 2}
    ranked = table.assign(rank=table["split"].map(order).fillna(3)).sort_values(["set", "rank", "path"])
    return df[~df["path"].isin(set(ranked.groupby("set").tail(-1)["path"]))]


def worst_sets(table):
    """The set ids to draw, worst first: across splits, then with two labels, then the largest."""
    if table.empty:
        return []
    by_set = table.groupby("set").agg(splits=("split", "nunique"), labels=("label", "nunique"), size=("path", "size"))
    ranked = by_set.sort_values(["splits", "labels", "size"], ascending=False)
    return list(ranked.index[:SHEET_SETS])


def contact_sheet(table, path):
    """duplicates.png: one row per worst set (show-batch's grid), each member titled with its split and label."""
    from cnn.evaluation.pictures import draw_sheet, open_image

    cells = []
    for row, number in enumerate(worst_sets(table)):
        for column, (_, member) in enumerate(table[table["set"] == number].head(SHEET_MEMBERS).iterrows()):
            cells.append((row * SHEET_MEMBERS + column, open_image(member["path"]),
                          f"set {number} ({member['kind']})\n{member['split']}/{member['label']}"))
    draw_sheet(cells, SHEET_MEMBERS, path)


def audit_data(labels, *, out="audit", write_clean=None, workers=None):
    """Audit the images of a labels CSV; write duplicates.csv, odd_images.csv, audit.json and duplicates.png
    into `out` (and the cleaned CSV to `write_clean`); return audit.json's figures."""
    import pandas as pd

    from cnn.data.loader import check_files

    started = time.monotonic()
    df = check_files(read_labels(labels), can_skip=False).reset_index(drop=True)
    df = df if "group" in df else df.assign(group="")
    out = Path(out)
    check_report_outputs(labels, df["path"], out, write_clean, ("-o", "--write-clean"), "audit-data")
    log(f"fingerprinting {len(df):,} images of {labels}")
    fingerprints = fingerprints_of(list(df["path"]), workers)
    exact = exact_sets(fingerprints)
    near = near_pairs(fingerprints, list(df["path"]), Progress("images whose near-copy candidates were checked"))
    distances = {}
    for i, j, d in near:
        distances[i] = min(distances.get(i, d), d)
        distances[j] = min(distances.get(j, d), d)
    pairs = [(m[0], k) for m in exact for k in m[1:]] + [(i, j) for i, j, _ in near]
    table = describe_sets(df, merge(len(df), pairs), fingerprints, distances)
    odd = pd.DataFrame([{"path": p, "kinds": " ".join(kinds), "error": fp.error}
                        for p, fp in zip(df["path"], fingerprints) if (kinds := oddities(fp))],
                       columns=["path", "kinds", "error"])
    figures = summarise(df, table, odd, time.monotonic() - started)
    (out / AUDIT_DATA).unlink(missing_ok=True)  # written last: a rerun killed half-way leaves no finished audit
    write_csv(out / "duplicates.csv", table, index=False)
    write_csv(out / "odd_images.csv", odd, index=False)
    contact_sheet(table, out / "duplicates.png")
    if write_clean is not None:
        write_csv(write_clean, clean_rows(df, table), index=False)
    write_json(out / AUDIT_DATA, {**figures, "labels": str(labels), "labels_sha256": sha256_file(labels),
                                    "method": "exact: sha256 of decoded pixels; near: KD-tree over low DCT "
                                              "frequencies, confirmed when at the best alignment the 64x64 99th-"
                                              "percentile differences stay under both limits (RGB 0.18, "
                                              "standardised gray 0.6); distance = the larger ratio to its limit"})
    print_summary(figures, out)
    return figures


def print_summary(figures, out):
    """The audit's table on stderr."""
    from tabulate import tabulate

    rows = [[key.replace("_", " "), value] for key, value in figures.items() if key != "odd_images"]
    rows += [[f"odd: {kind}", count] for kind, count in sorted(figures["odd_images"].items())]
    print(tabulate(rows, headers=["audit", "count"]), file=sys.stderr)
    log(f"written to {out}/ (duplicates.csv, odd_images.csv, {AUDIT_DATA}, duplicates.png)")
