"""Train a CNN from a labels CSV into a run folder, then score it once on the test split (train-cnn)."""
import contextlib
import datetime
import math
import os
import sys
import time
import warnings
from pathlib import Path

from cnn import runfolder as rf
from cnn.data.hierarchy import wants_hierarchy
from cnn.data.labels_csv import check_training_splits, read_labels, sha256_file
from cnn.training.options import RESUMABLE, TrainOptions, differences, flag
from common.atomic import write_json
from common.errors import UsageError


def log(message):
    """A summary line on stderr (stdout is kept for what a command exists to print)."""
    print(f"train-cnn: {message}", file=sys.stderr, flush=True)


def train(out=None, resume=False, callbacks=(), **typed):
    """Train per TrainOptions(**typed) into `out`, write the run folder; return (run folder, metrics).

    Rerunning with the same `out` after an interruption continues from the last finished epoch
    (Keras's BackupAndRestore in out/backup/) with the recorded options; `typed` may change only
    RESUMABLE ones, and a different labels CSV is refused. `resume=True` insists on continuing
    (without `out`: the newest interrupted run under runs/). Extra Keras `callbacks` run last.
    With `hierarchy` (typed or recorded in `out`) it trains the sub-models of a hierarchical run instead.
    Under --strategy multiworker only the chief writes `out` and returns metrics; other workers return None.
    """
    if out is None and typed.get("strategy") == "multiworker":
        raise UsageError("--strategy multiworker needs --out, the same folder on every worker")
    run_dir = Path(out) if out is not None else (rf.latest_interrupted_run() if resume else None)
    if wants_hierarchy(run_dir, typed):
        from cnn.training.hierarchical import train_hierarchy

        return train_hierarchy(run_dir, resume, list(callbacks), typed)
    done = rf.finished_epochs(run_dir) if run_dir is not None else None
    if resume and done is None:
        raise UsageError(f"nothing to resume in {run_dir}: no {rf.BACKUP}/ (the run finished or never started)")
    options, df = (continued_run(run_dir, typed) if done is not None else fresh_run(typed))
    classes = check_training_splits(df, options.labels)
    run_dir = run_dir if run_dir is not None else rf.default_run_dir(options.arch)
    from common.tfenv import quiet_tensorflow

    quiet_tensorflow()
    from cnn.training.precision import precision_policy
    from cnn.training.strategy import cluster_role, distribution, workspace
    from cnn.models.transfer import prepare

    if options.strategy != "multiworker" or cluster_role()[2]:  # only the chief's folder is its own
        check_run_dir(run_dir, done, classes)
    dist = distribution(options.strategy)  # before any other TensorFlow work: multiworker needs it so
    prepare(options)  # the starting weights load (before the lock makes the run folder)
    with workspace(dist, run_dir, rf.BACKUP) as folder, rf.locked(folder), \
            precision_policy(options.precision) as policy:
        return fit_and_report(folder, done, df, classes, options, policy, list(callbacks), dist)


def fresh_run(typed):
    """(options, labels DataFrame) of a new run."""
    options = TrainOptions(**typed)
    return options, checked_files(read_labels(options.labels), options)


def continued_run(run_dir, typed):
    """(options, labels DataFrame) of an interrupted run: its recorded options and the very same labels CSV."""
    config = rf.load_config(run_dir)
    recorded = recorded_options(config, run_dir)
    differ = differences(recorded, typed, allowed=RESUMABLE)
    if differ:
        raise UsageError(f"{run_dir} is an interrupted run with other options: {'; '.join(differ)}; continue it "
                         f"with its own (only {', '.join(map(flag, RESUMABLE))} may change) or choose another --out")
    options = TrainOptions(**{**recorded, **typed})
    entry = config["labels"]
    path = Path(entry["resolved"])
    if not path.is_file() or sha256_file(path) != entry["sha256"]:
        raise UsageError(f"{path}, the labels CSV {run_dir} was trained on, is missing or changed since (sha256 "
                         f"differs); restore it to continue, or start a new run with another --out")
    same_cwd = os.path.realpath(os.getcwd()) == os.path.realpath(entry["cwd"])
    return options, checked_files(read_labels(path, base=None if same_cwd else entry["cwd"]), options)


def recorded_options(config, run_dir):
    """The options config.json recorded, as TrainOptions keywords; runs from before --recipe were the card's."""
    from dataclasses import fields

    known = {f.name for f in fields(TrainOptions)}
    recorded = {k: v for k, v in config["options"].items() if k != "out"}
    unknown = sorted(set(recorded) - known)
    if unknown:
        raise UsageError(f"{run_dir} was recorded by another version of train-cnn (options {', '.join(unknown)}); "
                         f"continue it with that version or start a new run")
    return {"recipe": "card", **recorded}


def checked_files(df, options):
    """The rows whose image exists: missing files are refused (or dropped with --skip-missing) before any work.
    Training from --data shards needs no image file."""
    from cnn.data.loader import check_files

    return df if options.data != "none" else check_files(df, skip_missing=options.skip_missing)


def check_run_dir(run_dir, done, classes):
    """Refuse a folder in use by another trainer, a finished run folder, or an interrupted one trained on other
    classes."""
    rf.refuse_if_in_use(run_dir)
    if done is not None:
        if rf.load_classes(run_dir) != classes:
            raise UsageError(f"the labels CSV's classes differ from those {run_dir} was trained on; "
                             f"resume with the same labels CSV")
        return
    if (run_dir / rf.MODEL).exists() and rf.model_loads(run_dir):
        hint = "" if (run_dir / rf.METRICS).exists() else f" (its report is missing: run evaluate-cnn {run_dir})"
        raise UsageError(f"{run_dir} already holds a trained model{hint}; choose another --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file, not a folder; choose another --out")


def write_config(run_dir, options, df, classes, policy, class_weight, **extra):
    """config.json: every resolved option, the labels CSV's path and hash, precision, the starting weights'
    files, package and code versions (and `extra`)."""
    from cnn.models.transfer import provenance

    write_json(run_dir / rf.CONFIG, {
        "options": {**options.to_dict(), "out": str(run_dir)},
        "labels": {"path": options.labels, "resolved": str(Path(options.labels).resolve()), "cwd": os.getcwd(),
                   "sha256": sha256_file(options.labels), "rows": df["split"].value_counts().to_dict()},
        "num_classes": len(classes),
        "precision": policy,
        "class_weight": class_weight,
        "starting_weights": provenance(options),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "versions": rf.package_versions(),
        "code": rf.code_version(),
        **extra,
    })


def compile_model(model, options):
    """Compile with the recipe's optimizer, schedule and (smoothed) cross-entropy; returns the model."""
    import keras

    from cnn.training.schedule import make_optimizer

    model.compile(optimizer=make_optimizer(options),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=options.label_smoothing),
                  metrics=["accuracy"])
    return model


def report_rows(df):
    """The test split, scored once after training (the val split when the CSV has no test rows)."""
    if (df.split == "test").any():
        return df[df.split == "test"], "test"
    log("warning: the labels CSV has no 'test' rows; the report scores the 'val' split instead")
    return df[df.split == "val"], "val"


def fit_and_report(run_dir, done, df, classes, options, policy, callbacks, dist):
    """Fit (fresh or resumed; with --fine-tune, then the second phase) under the Distribution `dist`, then (on
    the chief) score the best checkpoint once and write the reports."""
    import keras

    from cnn.data.datasets import balanced_class_weights

    rf.remove_partial_files(run_dir)
    keras.utils.set_random_seed(options.seed)
    weights = (balanced_class_weights(df.label[df.split == "train"], classes)
               if options.class_weight == "balanced" else None)
    # The first phase (the only one without --fine-tune), unless it finished: built before anything is written,
    # so a bad option leaves no run folder behind.
    first = None if (run_dir / rf.PHASE).is_file() else first_phase(df, classes, options, dist)
    if done is None:
        write_config(run_dir, options, df, classes, policy, weights)
        rf.save_classes(run_dir, classes)
        spread = "" if dist.name == "default" else f", strategy {dist.name}, {dist.replicas} replica(s)"
        log(f"training {options.arch} on {len(classes)} classes into {run_dir} (precision {policy}{spread})")
    else:
        log(f"resuming {run_dir} after epoch {done}")
    seconds = 0.0
    if first:
        trained, train_data, val_data, saved = first
        seconds = fit(trained, train_data, val_data, options, weights, run_dir, done, callbacks, dist,
                      train_rows(df), saved=saved, phase=1 if options.fine_tune else None)
    if options.fine_tune:
        from cnn.training.finetune import second_phase

        seconds += second_phase(run_dir, done, df, classes, options, weights, callbacks, dist)
    result = report(run_dir, df, classes, options, seconds) if dist.chief else (run_dir, None)
    if dist.name == "multiworker":
        from cnn.training.multiworker import finish_together

        finish_together(dist)
    return result


def train_rows(df):
    """The number of training rows: an epoch is ceil(rows / --batch-size) steps on every worker."""
    return int((df.split == "train").sum())


def first_phase(df, classes, options, dist):
    """(model to fit, train data, val data, model to save): the model from its starting weights and the image
    datasets, or with the feature cache its head and the features, computed once (saved: the full model)."""
    from cnn.training import feature_cache
    from cnn.data.datasets import make_datasets
    from cnn.models.transfer import build

    train_data, val_data = make_datasets(df, classes, options, dist)
    with dist.strategy.scope():
        model = build(options, classes)
        if dist.name == "default" and feature_cache.applies(model, options):
            head, train_data, val_data = feature_cache.cached_datasets(model, df, classes, options)
            return compile_model(head, options), train_data, val_data, model
        return compile_model(model, options), train_data, val_data, None


def fit(model, train_data, val_data, options, weights, run_dir, done, callbacks, dist, rows, saved=None,
        phase=None, first_epoch=0):
    """model.fit (or cnn.training.multiworker's loop) with the run folder's callbacks and progress on stderr; returns the
    seconds it took.

    `rows` is the train split's size (an epoch's steps); `saved` is the model model.keras holds when it is not
    `model` (the feature cache fits the head alone); `phase` and `first_epoch` place a fine-tuning phase in
    history.csv. A split none of whose images decodes is a user error (Keras would fail on the empty dataset).

    `saved` is the model model.keras holds when it is not `model` (the feature cache fits the head alone);
    `phase` and `first_epoch` place a fine-tuning phase in history.csv. A split none of whose images decodes
    is a user error (Keras would fail on the empty dataset).
    """
    import keras

    from cnn.training.callbacks import training_callbacks
    from cnn.training.multiworker import fit_multiworker
    from cnn.training.schedule import schedule_callback

    # An epoch is ceil(rows / --batch-size) steps. Multiworker: every worker runs that many (the collectives must
    # match), each from its own share of the rows, repeated, so a worker's pass may end inside an epoch.
    steps = math.ceil(rows / options.batch_size)
    if options.tensorboard:
        from cnn.training.tensorboard import tensorboard_callbacks

        callbacks = callbacks + tensorboard_callbacks(run_dir, val_data, train_data.class_names)
    callbacks = ([keras.callbacks.TerminateOnNaN(), schedule_callback(options, steps, first_epoch)]
                 + training_callbacks(run_dir, options.patience, done, phase, saved) + callbacks)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # The loader's length is unknown until its first pass (undecodable images are skipped), which
        # Keras reports as running out of data at the end of epoch 1: expected, not a problem.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        try:
            if dist.name == "multiworker":
                fit_multiworker(dist, model, train_data, val_data, options, weights, callbacks, steps, done)
            else:
                model.fit(train_data.dataset, validation_data=val_data.dataset, initial_epoch=first_epoch,
                          epochs=first_epoch + options.epochs, class_weight=weights, shuffle=False,
                          verbose=1 if sys.stderr.isatty() else 2, callbacks=callbacks)
        finally:
            check_decodable(train_data, "train")
            check_decodable(val_data, "val")
    return time.perf_counter() - started


def check_decodable(loaded, split):
    """A split none of whose images decoded cannot train or validate: a user error naming the first file."""
    if loaded.file_paths and loaded.skipped.count == len(loaded.file_paths):
        raise UsageError(f"none of the {len(loaded.file_paths)} images of the '{split}' split could be decoded "
                         f"(first: {loaded.skipped.paths[0]}); check the files")


def usable_history(run_dir, options):
    """history.csv's epochs with a finite validation loss; divergence (a NaN loss) is reported, or refused
    when no epoch before it is usable."""
    import numpy as np
    import pandas as pd

    history = pd.read_csv(run_dir / rf.HISTORY)
    last = history.iloc[-1]
    finite = history[np.isfinite(history["val_loss"])]
    if np.isfinite(last["loss"]) and np.isfinite(last["val_loss"]):
        return history
    epoch = int(last["epoch"]) + 1
    if finite.empty or not rf.model_loads(run_dir):
        raise UsageError(f"training diverged at epoch {epoch} (the loss became NaN) before any usable epoch; "
                         f"lower --lr (it was {options.lr}) and run again")
    log(f"warning: training diverged at epoch {epoch} (the loss became NaN); the report uses the best epoch before it")
    return finite


def report(run_dir, df, classes, options, seconds):
    """Score the best checkpoint once on the test split, write the reports, log the headline figures."""
    from cnn.evaluation.evaluate import score_model
    from cnn.evaluation.reports import summary_lines, write_reports

    history = usable_history(run_dir, options)
    best = history.loc[history["val_loss"].idxmin()]
    log(f"{len(history)} epochs in history.csv; model.keras is epoch {int(best.epoch) + 1} "
        f"(val_loss {best.val_loss:.4f}, val_accuracy {best.val_accuracy:.4f}); this attempt took {seconds:.0f} s")
    rows, split = report_rows(df)
    _, _, metrics = score_model(rf.load_run(run_dir), rows, options.batch_size, options.skip_missing, options.data)
    metrics.update(split=split, labels=str(options.labels), train_seconds=round(seconds, 1),
                   epochs_run=len(history), best_epoch=int(best.epoch) + 1)
    write_reports(run_dir, metrics, classes, run_dir / rf.HISTORY)
    for line in summary_lines(metrics):
        log(line)
    log(f"run folder: {run_dir} (report.txt, metrics.json, curves.png, confusion.png)")
    return run_dir, metrics
