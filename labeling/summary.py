"""The end-of-run report: per-label counts by split as a table, the scan's counts, the check report, warnings."""
from tabulate import tabulate

from common.schema import CATEGORY_TYPE, SPLITS

PROG = "make-labels"


def label_counts(table):
    """[{label, [category_type], images, groups, train, val, test}, ...], most images first, then a totals row."""
    by_label = table.groupby("label", sort=True)
    splits = [s for s in SPLITS if (table["split"] == s).any()]
    rows = []
    for label, rows_of_label in by_label:
        row = {"label": label}
        if CATEGORY_TYPE in table:
            row["type"] = rows_of_label[CATEGORY_TYPE].iloc[0]
        row.update(images=len(rows_of_label), groups=rows_of_label["group"].nunique())
        counts = rows_of_label["split"].value_counts()
        row.update({s: int(counts.get(s, 0)) for s in splits})
        rows.append(row)
    rows.sort(key=lambda row: (-row["images"], row["label"]))
    total = {"label": "TOTAL", "images": len(table), "groups": table["group"].nunique()}
    if CATEGORY_TYPE in table:
        total["type"] = ""
    total.update({s: int((table["split"] == s).sum()) for s in splits})
    return rows + [total]


def format_summary(table, summary):
    """The text make-labels prints to stderr at the end (no trailing newline)."""
    lines = [f"{PROG}: scanned {summary['files']:,} files in {summary['folders']:,} folders under {summary['root']}: "
             f"{summary['images_found']:,} images; skipped {summary['non_images_skipped']:,} non-image files and "
             f"{summary['hidden_skipped']:,} hidden entries",
             f"{PROG}: labels from {_source_text(summary['source'])}; split: {_split_text(summary)}"]
    if "agree" in summary.get("check", {}):
        lines += _check_lines(summary["check"])
    lines.append(tabulate(summary["labels"], headers="keys", intfmt=",", disable_numparse=[0]))
    lines.append(f"{PROG}: {summary['rows']:,} rows, {len(summary['labels']) - 1} labels, "
                 f"{summary['labels'][-1]['groups']:,} groups")
    lines += [f"{PROG}: warning: {message}" for message in summary["warnings"]]
    return "\n".join(lines)


def _source_text(source):
    """How the labels were read, in words."""
    return {"suffix": "folder names (last '_' word)", "official": "Anno/list_category_img.txt (--source official)",
            "check": "folder names, checked against Anno/list_category_img.txt"}[source]


def _split_text(summary):
    """How the split was made, in words."""
    if summary["split"] == "group":
        return (f"group (by folder, seed {summary['seed']}, val {summary['val_frac']:g}, "
                f"test {summary['test_frac']:g})")
    return {"folders": "folders (train/ val/ test/ on disk)", "official": "official (Eval/list_eval_partition.txt)",
            "none": "none (split column left empty)"}[summary["split"]]


def _check_lines(check):
    """The --source check report: agreement count and the disagreeing folders."""
    compared = check["agree"] + check["disagree"]
    lines = [f"{PROG}: check: {check['agree']:,} of {compared:,} annotated images agree with their folder label; "
             f"{check['disagree']:,} disagree in {len(check['disagreeing_folders'])} folder(s); "
             f"{check['missing_on_disk']:,} listed but missing on disk; "
             f"{check['not_in_annotations']:,} on disk but not listed"]
    if check["disagreeing_folders"]:
        lines.append(tabulate(check["disagreeing_folders"], headers="keys"))
    return lines
