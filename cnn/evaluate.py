"""Score a trained run on a labels CSV split and write its reports (evaluate-cnn, and after training)."""
import os
import sys
from pathlib import Path

from cnn.labels_csv import check_known_labels, read_labels, select_split, sha256_file
from cnn.metrics import classification_metrics
from cnn.reports import write_reports
from cnn.runfolder import HISTORY, load_config, load_run
from cnn.shards import packed_size, read_rows, rows_csv
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


def score(model, rows, classes, image_size, batch_size=32, skip_missing=False, data="none"):
    """Metrics of `model` on the labelled `rows` (a labels DataFrame already filtered to one split), read from
    the image files, or from the shards of those rows' splits in the `data` folder."""
    from cnn.data import flow_from_dataframe
    from cnn.shards import flow_from_shards

    loaded = (flow_from_shards(data, sorted(set(rows["split"])), classes, batch_size) if data != "none" else
              flow_from_dataframe(rows, classes=classes, target_size=(image_size, image_size),
                                  batch_size=batch_size, shuffle=False, skip_missing=skip_missing))
    truth, probs = predict_dataset(model, loaded.dataset)
    return {**classification_metrics(truth, probs, classes), "skipped_images": loaded.skipped.count}


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


def evaluate_run(run_dir, labels=None, split="test", batch_size=32, skip_missing=False, data=None):
    """Score a run on one split of a labels CSV or shards folder; write the reports; return (metrics, report folder).

    `data` None reads what the run trained from (its labels CSV, or its --data shards) unless `labels` names
    another CSV; a `data` folder is read as shards, packed at the run's image size.
    """
    run = load_run(run_dir)
    if data is None:  # what the run trained from, or the CSV given
        data = run.config["options"].get("data", "none") if labels is None else "none"
        data = data if data == "none" else os.path.join(run.config["labels"]["cwd"], data)  # from where it trained
        (df, source), named = run_labels(run_dir, labels), labels
    else:
        df, source, named = read_rows(data), str(rows_csv(data)), data
    if data != "none" and packed_size(data) != run.image_size:
        raise UsageError(f"--data {data} was packed at {packed_size(data)} px but {run_dir} takes {run.image_size} px; "
                         f"pack the images again with --image-size {run.image_size}")
    rows = select_split(df, split, source)
    check_known_labels(rows, run.classes, source)
    metrics = score(run.model, rows, run.classes, run.image_size, batch_size, skip_missing, data)
    metrics.update(split=split, labels=source)
    out = report_dir(run_dir, named, split)
    history = Path(run_dir) / HISTORY if out == Path(run_dir) else None
    write_reports(out, metrics, run.classes, history)
    return metrics, out
