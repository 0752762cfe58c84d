"""evaluate-cnn RUN --compare OTHER: two runs trained on the same labels CSV (typically a hierarchical one and a
flat one), scored on the very same rows and shown side by side, with the images each one gets right."""
from pathlib import Path

from cnn.runfolder import COMPARE
from common.atomic import write_json, write_text
from common.errors import UsageError

ROWS = (("top1", "top-1"), ("top3", "top-3"), ("top5", "top-5"), ("balanced_accuracy", "balanced accuracy"),
        ("macro_f1", "macro F1"), ("hard_top1", "hard cascade top-1"), ("coarse_top1", "coarse accuracy"))


def check_comparable(run, other):
    """Refuse, before any scoring, a run (cnn.runfolder.Run) trained on another labels CSV (SHA-256) or on other
    classes than `run`."""
    other_dir = other.path
    mine, theirs = run.config["labels"], other.config["labels"]
    if mine["sha256"] != theirs["sha256"]:
        raise UsageError(f"--compare {other_dir}: it was trained on {theirs['path']}, whose sha256 differs from "
                         f"{run.path}'s labels CSV {mine['path']}; compare runs trained on the same labels CSV")
    if other.classes != run.classes:
        raise UsageError(f"--compare {other_dir}: its classes differ from {run.path}'s; compare runs trained on "
                         f"the same labels CSV")


def compare_on_rows(first, other, rows, out, batch_size=32, skip_missing=False):
    """Score the other run, `other` = (run folder, its scorer), on the rows `first` = (run folder, truth,
    probabilities, metrics) was scored on; write OUT/compare.txt and compare.json; return the comparison."""
    run_dir, truth, probs, metrics = first
    other_dir, other_score = other
    other_truth, other_probs, other_metrics = other_score(rows, batch_size, skip_missing)
    if len(other_truth) != len(truth) or (other_truth != truth).any():
        raise UsageError(f"{run_dir} and {other_dir} read different images from the same rows; check the files")
    comparison = side_by_side(str(run_dir), str(other_dir), truth, (probs, other_probs), (metrics, other_metrics))
    comparison.update(split=metrics["split"], labels=metrics["labels"])
    write_json(Path(out) / f"{COMPARE}.json", comparison)
    write_text(Path(out) / f"{COMPARE}.txt", format_comparison(comparison) + "\n")
    return comparison


def side_by_side(name, other_name, truth, probs, metrics):
    """{runs, images, metrics: [{metric, values, difference}], and the counts of images right in both,
    only one, or neither} for two runs' probabilities on the same images."""
    right = [p.argmax(axis=1) == truth for p in probs]
    table = []
    for key, text in ROWS:
        values = [m.get(key) for m in metrics]
        if any(v is not None for v in values):
            difference = values[0] - values[1] if None not in values else None
            table.append({"metric": text, "key": key, "values": values, "difference": difference})
    return {"runs": [name, other_name], "images": int(len(truth)), "metrics": table,
            "both_right": int((right[0] & right[1]).sum()), "only_first_right": int((right[0] & ~right[1]).sum()),
            "only_second_right": int((~right[0] & right[1]).sum()), "neither_right": int((~right[0] & ~right[1]).sum())}


def _cell(value, sign=""):
    """A figure of the table to 4 decimals, or '-' where a run has no such figure."""
    return "-" if value is None else f"{value:{sign}.4f}"


def format_comparison(comparison):
    """The printed side-by-side table and the top-1 agreement line."""
    from tabulate import tabulate

    first, second = comparison["runs"]
    rows = [[r["metric"], _cell(r["values"][0]), _cell(r["values"][1]), _cell(r["difference"], "+")]
            for r in comparison["metrics"]]
    return "\n".join([
        f"the same {comparison['images']} images (split {comparison['split']} of {comparison['labels']}):",
        tabulate(rows, headers=["metric", first, second, "difference"], disable_numparse=True),
        f"top-1 right in both: {comparison['both_right']}; only {first}: {comparison['only_first_right']}; "
        f"only {second}: {comparison['only_second_right']}; neither: {comparison['neither_right']}",
    ])
