"""Score a trained run on a labels CSV split and write its reports (evaluate-cnn, and after training)."""
import os
import sys
from pathlib import Path

from cnn.data.labels_csv import check_known_labels, read_labels, select_split, sha256_file
from cnn.evaluation.metrics import classification_metrics
from cnn.evaluation.reports import write_reports
from cnn.runfolder import HISTORY, load_config, load_run
from cnn.data.shards import packed_size, read_rows, rows_csv
from common.errors import UsageError


def predict_dataset(model, dataset):
    """Softmax outputs and true class indices for every image the dataset yields (skipped files excluded)."""
    import numpy as np

    probs, truth = [], []
    for images, onehot in dataset:
        probs.append(np.asarray(model.predict_on_batch(images), dtype=np.float64))
        truth.append(np.argmax(onehot.numpy(), axis=1))
    if not probs:
        raise UsageError("no image could be read, so there is nothing to score")
    return np.concatenate(truth), np.concatenate(probs)


def predict_rows(model, rows, classes, image_size, batch_size=32, skip_missing=False, data="none"):
    """(true class indices, `model`'s outputs, images skipped) on the labelled `rows`, read by the loader from the
    image files, or from the shards of those rows' splits in the `data` folder."""
    from cnn.data.loader import flow_from_dataframe
    from cnn.data.shards import flow_from_shards

    loaded = (flow_from_shards(data, sorted(set(rows["split"])), classes, batch_size) if data != "none" else
              flow_from_dataframe(rows, classes=classes, target_size=(image_size, image_size),
                                  batch_size=batch_size, shuffle=False, skip_missing=skip_missing))
    truth, probs = predict_dataset(model, loaded.dataset)
    return truth, probs, loaded.skipped.count


def score_model(run, rows, batch_size=32, skip_missing=False, data="none"):
    """(true class indices, probabilities, metrics) of a flat run (a loaded Run) on labelled rows."""
    truth, probs, skipped = predict_rows(run.model, rows, run.classes, run.image_size, batch_size, skip_missing,
                                         data)
    return truth, probs, {**classification_metrics(truth, probs, run.classes), "skipped_images": skipped}


def run_scorer(run_dir):
    """scorer(rows, batch_size, skip_missing, data) -> (true class indices, probabilities, metrics) for a run folder,
    flat or hierarchical; its model(s) are loaded and checked against the folder now, before any image is read."""
    from functools import partial

    from cnn.data.hierarchy import is_hierarchical

    if is_hierarchical(run_dir):
        from cnn.evaluation.cascade_run import load_cascade, score_cascade

        return partial(score_cascade, load_cascade(run_dir))
    return partial(score_model, load_run(run_dir))


def run_labels(run_dir, labels=None):
    """(DataFrame, source) for scoring: the given CSV (paths from cwd) or the run's own CSV.

    The run's own CSV is read with its image paths resolved from the folder train-cnn ran in,
    so `evaluate-cnn RUN` works from anywhere; a changed file is reported on stderr.
    """
    if labels is not None:
        return read_labels(labels), str(labels)
    entry = load_config(run_dir)["labels"]
    path = Path(entry["resolved"])
    df = read_labels(path, base=entry["cwd"])
    if sha256_file(path) != entry["sha256"]:
        print(f"evaluate-cnn: warning: {path} changed since training (sha256 differs)", file=sys.stderr)
    return df, str(path)


def scoring_rows(run, run_dir, labels, data):
    """(DataFrame, source, name for the report folder, shards folder or "none") of what to score.

    `data` None reads what the run trained from (its labels CSV, or its --data shards) unless `labels` names
    another CSV; a `data` folder is read as shards, packed at the run's image size.
    """
    if data is None:  # what the run trained from, or the CSV given
        data = run.config["options"].get("data", "none") if labels is None else "none"
        data = data if data == "none" else os.path.join(run.config["labels"]["cwd"], data)  # from where it trained
        (df, source), named = run_labels(run_dir, labels), labels
    else:
        df, source, named = read_rows(data), str(rows_csv(data)), data
    if data != "none" and packed_size(data) != run.image_size:
        raise UsageError(f"--data {data} was packed at {packed_size(data)} px but {run_dir} takes {run.image_size} px; "
                         f"pack the images again with --image-size {run.image_size}")
    return df, source, named, data


def report_dir(run_dir, labels, split):
    """Where a report goes: the run folder itself for its own test split, else a sub-folder.

    RUN/eval-<split>/ for another split of the run's CSV, RUN/eval-<csv or shards folder name>-<split>/ for another
    CSV or a --data folder,
    so the training report is never overwritten by a different evaluation.
    """
    run_dir = Path(run_dir)
    if labels is None:
        return run_dir if split == "test" else run_dir / f"eval-{split}"
    return run_dir / f"eval-{Path(labels).stem}-{split}"


def evaluate_run(run_dir, labels=None, split="test", batch_size=32, skip_missing=False, compare=None, data=None):
    """Score a run (flat or hierarchical) on one split of a labels CSV or shards folder; write the reports; return
    (metrics, report folder). With `compare` (another run trained on the same labels CSV), metrics["comparison"]
    holds both runs side by side on the same rows (also written as compare.txt and compare.json)."""
    from cnn.evaluation.compare import check_comparable, compare_on_rows

    scorer = run_scorer(run_dir)
    run = load_run(run_dir, model=False)
    if compare is not None:
        check_comparable(run, compare)
    df, source, named, data = scoring_rows(run, run_dir, labels, data)
    if compare is not None and data != "none":
        raise UsageError("--compare scores both runs on the same image files; drop --data (or --compare)")
    rows = select_split(df, split, source)
    check_known_labels(rows, run.classes, source)
    truth, probs, metrics = scorer(rows, batch_size, skip_missing, data)
    metrics.update(split=split, labels=source)
    out = report_dir(run_dir, named, split)
    history = Path(run_dir) / HISTORY if out == Path(run_dir) else None
    write_reports(out, metrics, run.classes, history)
    if compare is not None:
        metrics["comparison"] = compare_on_rows((run_dir, truth, probs, metrics), compare, rows, out,
                                                batch_size, skip_missing)
    return metrics, out
