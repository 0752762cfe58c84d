"""Score a trained run on a labels CSV split and write its reports (evaluate-cnn, and after training)."""
import os
from functools import partial
from pathlib import Path

from cnn.data.labels_csv import check_extra_csvs, check_known_labels, read_labels, run_labels, select_split
from cnn.data.shards import packed_size, read_rows, rows_csv
from cnn.evaluation.audits import attach_audits
from cnn.evaluation.error_maps import write_error_maps
from cnn.evaluation.html_report import write_html_report
from cnn.evaluation.reports import write_reports
from cnn.evaluation.scoring import score
from cnn.evaluation.shifts import FOLDER as SHIFTS_FOLDER
from cnn.runfolder import HISTORY, METRICS, read_json
from cnn.runs.predictor import open_run
from common.console import writer
from common.errors import UsageError

TRAINING_FIGURES = ("train_seconds", "epochs_run", "best_epoch", "sub_models")  # metrics.json keys only training knows
EXTRA_FIGURES = ("images", "top1", "balanced_accuracy", "macro_f1")  # what also_scored keeps of each CSV's metrics
say = writer("evaluate-cnn")
FILES_ONLY = "{0} scores the image files; drop --data (or {0})"
ENSEMBLE = "ensemble"  # a --repeats parent's ensemble report: PARENT/ensemble/ (and ensemble/eval-.../)


def scoring_rows(run, run_dir, labels, data):
    """(DataFrame, source, name for the report folder, shards folder or "none") of what to score.

    `data` None reads what the run trained from (its labels CSV, or its --data shards) unless `labels` names
    another CSV; a `data` folder is read as shards, packed at the run's image size.
    """
    if data is None:  # what the run trained from, or the CSV given
        data = run.config["options"].get("data", "none") if labels is None else "none"
        data = data if data == "none" else os.path.join(run.config["labels"]["cwd"], data)  # from where it trained
        (df, source), named = run_labels(run.path, labels), labels
    else:
        df, source, named = read_rows(data), str(rows_csv(data)), data
    if data != "none" and packed_size(data) != run.image_size:
        raise UsageError(f"--data {data} was packed at {packed_size(data)} px but {run_dir} takes {run.image_size} px; "
                         f"pack the images again with --image-size {run.image_size}")
    return df, source, named, data


def report_dir(run_dir, labels, split, tta="none"):
    """Where a report goes: the run folder itself for its own test split, else a sub-folder.

    RUN/eval-<split>/ for another split of the run's CSV, RUN/eval-<csv or shards folder name>-<split>/ for another
    CSV or a --data folder, with -tta-<name> after it under test-time augmentation, so the training report is
    never overwritten by a different evaluation.
    """
    run_dir, suffix = Path(run_dir), "" if tta == "none" else f"-tta-{tta}"
    if labels is None:
        return run_dir if split == "test" and not suffix else run_dir / f"eval-{split}{suffix}"
    return run_dir / f"eval-{Path(labels).stem}-{split}{suffix}"


def score_extra_csvs(run_dir, predictor, csvs, batch_size=32, skip_missing=False):
    """Score every row of each labels CSV (--also-score) and write its report to RUN/eval-<name>-all/; returns
    {name: {labels, images, top1, balanced_accuracy, macro_f1}} for metrics.json's also_scored."""
    scored = {}
    for csv in csvs:
        rows = select_split(read_labels(csv), "all", csv)
        check_known_labels(rows, predictor.classes, csv)
        _, _, metrics = score(predictor, rows, batch_size, skip_missing)
        metrics.update(split="all", labels=str(csv))
        write_reports(report_dir(run_dir, csv, "all", predictor.tta), metrics, predictor.classes, None)
        scored[Path(csv).stem] = {"labels": str(csv), **{k: metrics[k] for k in EXTRA_FIGURES}}
        say(f"{Path(csv).stem}: top-1 {metrics['top1']:.4f}, balanced accuracy {metrics['balanced_accuracy']:.4f} "
            f"on {metrics['images']} images")
    return scored


def carry_training_record(out, metrics):
    """Re-scoring a run's own test split rewrites its metrics.json: keep the figures only training knows (time,
    epochs, sub-models) in `metrics`, and return the top-1 it replaces (None when there was no report)."""
    if not (out / METRICS).is_file():
        return None
    before = read_json(out / METRICS)
    metrics.update({k: before[k] for k in TRAINING_FIGURES if k in before})
    return before.get("top1")


def shift_check(score, rows, reference, batch_size, skip_missing, out):
    """Score `rows` under every shift (`reference`: their own metrics, the "none" row), write shifts.csv/json/png
    into `out`; returns the records and summary."""
    from cnn.evaluation.shifts import score_shifts, shift_summary, write_shift_report

    results = score_shifts(score, rows, reference, batch_size, skip_missing, log=say)
    write_shift_report(out, results)
    return {**shift_summary(results), "table": results}


def open_scored_run(path, tta):
    """open_run for scoring: a train-cnn run (flat, hierarchical or a --repeats ensemble), whose record names the
    labels CSV; an export has none."""
    predictor = open_run(path, tta)
    if predictor.kind == "export":
        raise UsageError(f"{path} is an export-model folder; evaluate the run it was exported from")
    return predictor


def evaluate_run(run_dir, *, labels=None, split="test", batch_size=32, skip_missing=False, compare=None, data=None,
                 tta="none", audits=(), shifts=False, also_score=()):
    """Score a run (flat or hierarchical) on one split of a labels CSV or shards folder; write the reports; return
    (metrics, report folder). With `compare` (another run trained on the same labels CSV), metrics["comparison"]
    holds both runs side by side on the same rows (also written as compare.txt and compare.json). `audits`:
    audit-data/audit-labels output folders to attach to the run (RUN/audits.json), shown on its report.html.
    `shifts`: also score the split under cnn.evaluation.shifts' changes of look (written to <report>/shifts/).
    `also_score`: labels CSVs whose every row is scored too (metrics["also_scored"], RUN/eval-<name>-all/)."""
    from cnn.evaluation.compare import check_comparable, compare_on_rows

    if shifts and data is not None:  # before any model loads; a run trained from shards is refused below
        raise UsageError(FILES_ONLY.format("--shifts"))
    mine = open_scored_run(run_dir, tta)
    if audits:
        attach_audits(run_dir, audits)
    run = mine.record
    other = open_scored_run(compare, tta) if compare is not None else None
    if other is not None:
        check_comparable(run, other.record)
    df, source, named, data = scoring_rows(run, run_dir, labels, data)
    for wanted, option in ((compare is not None, "--compare"), (shifts, "--shifts")):
        if wanted and data != "none":
            raise UsageError(FILES_ONLY.format(option))
    rows = select_split(df, split, source)
    check_known_labels(rows, run.classes, source)
    check_extra_csvs(also_score, run.classes)
    truth, probs, metrics = score(mine, rows, batch_size, skip_missing, data)
    metrics.update(split=split, labels=source)
    home = Path(run_dir) / ENSEMBLE if mine.kind == "ensemble" else Path(run_dir)
    out = report_dir(home, named, split, tta)
    if also_score:
        metrics["also_scored"] = score_extra_csvs(home, mine, also_score, batch_size, skip_missing)
    own = out == Path(run_dir)
    replaced = carry_training_record(out, metrics) if own else None
    if shifts:
        metrics["shifts"] = shift_check(partial(score, mine), rows, metrics, batch_size, skip_missing,
                                        out / SHIFTS_FOLDER)
    write_reports(out, metrics, run.classes, Path(run_dir) / HISTORY if own else None)
    if mine.explained is not None:
        write_error_maps(out, mine.explained, metrics["worst_errors"])
    if own or audits:
        write_html_report(run_dir)
    if replaced is not None:
        say(f"replaced {out / METRICS} (test top-1 {replaced:.4f} before, {metrics['top1']:.4f} now; the training "
             f"figures are kept)")
    if compare is not None:
        metrics["comparison"] = compare_on_rows((run_dir, truth, probs, metrics), (compare, partial(score, other)),
                                                rows, out, batch_size, skip_missing)
    return metrics, out
