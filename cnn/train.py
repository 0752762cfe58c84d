"""Train a CNN from a labels CSV into a run folder, then score it once on the test split (train-cnn)."""
import contextlib
import datetime
import os
import sys
import time
import warnings
from pathlib import Path

from cnn.callbacks import BACKUP, HISTORY, MODEL, finished_epochs, training_callbacks
from cnn.evaluate import load_run_model, score
from cnn.reports import summary_lines, write_reports
from cnn.runfolder import (UsageError, check_training_splits, load_classes, load_config, package_versions,
                           read_labels, save_classes, sha256_file, write_json)

RUNS = Path("runs")
# Options config.json records and `--resume` replays; these are train()'s keyword defaults.
DEFAULTS = dict(labels="labels.csv", epochs=20, batch_size=32, image_size=256, lr=1e-3, patience=3, seed=0,
                arch="cnn", augment="none", class_weight="none", precision="auto", dropout=0.0,
                batch_norm=False, skip_missing=False, cache="none")


def log(message):
    """A summary line on stderr (stdout is kept for what a command exists to print)."""
    print(f"train-cnn: {message}", file=sys.stderr, flush=True)


def default_run_dir(arch, runs=RUNS):
    """runs/<arch>-<n>, n one more than the highest already there."""
    taken = [int(p.name.rsplit("-", 1)[1]) for p in runs.glob(f"{arch}-*") if p.name.rsplit("-", 1)[1].isdigit()]
    return runs / f"{arch}-{max(taken, default=0) + 1}"


def latest_interrupted_run(runs=RUNS):
    """The most recently modified run folder under runs/ that holds a backup/ to resume."""
    candidates = [p.parent for p in runs.glob(f"*/{BACKUP}") if p.is_dir()]
    if not candidates:
        raise UsageError(f"no interrupted run under {runs}/ (none has a {BACKUP}/ folder); pass --out RUN")
    return max(candidates, key=lambda p: (p / BACKUP).stat().st_mtime)


def resume_options(run_dir, **overrides):
    """The options an interrupted run was started with (its config.json), updated with `overrides`."""
    options = {k: v for k, v in load_config(run_dir)["options"].items() if k != "out"}
    return {**options, **overrides}


def balanced_class_weights(labels, classes):
    """Weight n / (k * n_c) per class, so each class contributes equally to the loss."""
    counts = labels.value_counts()
    return {i: len(labels) / (len(classes) * int(counts[name])) for i, name in enumerate(classes)}


def cache_for(cache, split, image_size):
    """The loader's cache argument for one split: None, 'memory', or a per-split, per-size file prefix."""
    if cache == "none":
        return None
    if cache == "memory":
        return "memory"
    return f"{cache}.{split}-{image_size}px"


def parse_augmentation(augment):
    """The loader's augmentation spec for --augment, or None; a bad spec is a user error."""
    from cnn.data import parse_augment

    if augment == "none":
        return None
    try:
        return parse_augment(augment)
    except ValueError as e:
        raise UsageError(f"--augment {augment!r}: {e}") from None


def check_run_dir(run_dir, resume, classes):
    """Check the run folder fits the request; returns the epochs already done (None for a fresh run).

    A folder with a backup/ continues; one with a model.keras but no backup/ is finished and refused;
    anything else (empty, or killed during its first epoch) starts afresh.
    """
    run_dir = Path(run_dir)
    done = finished_epochs(run_dir)
    if resume and done is None:
        raise UsageError(f"nothing to resume in {run_dir}: no {BACKUP}/ (the run finished or never started)")
    if done is None and (run_dir / MODEL).exists():
        hint = "" if (run_dir / "metrics.json").exists() else f" (its report is missing: run evaluate-cnn {run_dir})"
        raise UsageError(f"{run_dir} already holds a trained model{hint}; choose another --out")
    if done is not None and load_classes(run_dir) != classes:
        raise UsageError(f"the labels CSV's classes differ from those {run_dir} was trained on; "
                         f"resume with the same labels CSV")
    return done


def write_config(run_dir, options, labels_path, df, classes, policy, class_weight):
    """config.json: every resolved option, the labels CSV's path and hash, precision and versions."""
    write_json(Path(run_dir) / "config.json", {
        "options": options,
        "labels": {"path": str(labels_path), "resolved": str(Path(labels_path).resolve()), "cwd": os.getcwd(),
                   "sha256": sha256_file(labels_path), "rows": df["split"].value_counts().to_dict()},
        "num_classes": len(classes),
        "precision": policy,
        "class_weight": class_weight,
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "versions": package_versions(),
    })


def make_datasets(df, classes, options):
    """The shuffled (optionally augmented) training dataset and the fixed-order validation dataset."""
    from cnn.data import flow_from_dataframe

    size = options["image_size"]
    common = dict(classes=classes, target_size=(size, size), batch_size=options["batch_size"],
                  skip_missing=options["skip_missing"])
    train = flow_from_dataframe(df[df.split == "train"], shuffle=True, seed=options["seed"],
                                augment=parse_augmentation(options["augment"]),
                                cache=cache_for(options["cache"], "train", size), **common)
    val = flow_from_dataframe(df[df.split == "val"], shuffle=False,
                              cache=cache_for(options["cache"], "val", size), **common)
    return train, val


def build_compiled_model(options, num_classes):
    """The chosen architecture, compiled with Adam and categorical cross-entropy."""
    import keras

    from cnn.models import build_model

    size = options["image_size"]
    model = build_model(options["arch"], num_classes, (size, size, 3),
                        dropout=options["dropout"], batch_norm=options["batch_norm"])
    model.compile(optimizer=keras.optimizers.Adam(options["lr"]), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def report_rows(df):
    """The test split, scored once after training (the val split when the CSV has no test rows)."""
    if (df.split == "test").any():
        return df[df.split == "test"], "test"
    log("warning: the labels CSV has no 'test' rows; the report scores the 'val' split instead")
    return df[df.split == "val"], "val"


def train(out=None, resume=False, callbacks=(), **overrides):
    """Train per the options (see DEFAULTS) into `out`, write the run folder; return (run folder, metrics).

    Rerunning with the same `out` after an interruption continues from the last finished epoch
    (Keras's BackupAndRestore in out/backup/); `resume=True` insists on that. Extra Keras
    `callbacks` run after the run folder's own.
    """
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    options = {**DEFAULTS, **overrides}
    from cnn.tfenv import quiet_tensorflow

    quiet_tensorflow()
    df = read_labels(options["labels"])
    classes = check_training_splits(df, options["labels"])
    run_dir = Path(out) if out is not None else default_run_dir(options["arch"])
    done = check_run_dir(run_dir, resume, classes)
    with precision_policy(options["precision"]) as policy:
        return _fit_and_report(run_dir, done, df, classes, options, policy, list(callbacks))


@contextlib.contextmanager
def precision_policy(precision):
    """Apply the resolved --precision policy for the block, then restore the previous global policy."""
    import keras

    from cnn.precision import apply_precision, resolve_precision

    previous = keras.mixed_precision.global_policy().name
    policy = resolve_precision(precision)
    apply_precision(policy)
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _fit_and_report(run_dir, done, df, classes, options, policy, callbacks):
    """Fit (fresh or resumed), then score the best checkpoint once on the test split and write the reports."""
    import keras
    import pandas as pd

    keras.utils.set_random_seed(options["seed"])
    train_ds, val_ds = make_datasets(df, classes, options)
    weights = (balanced_class_weights(df.label[df.split == "train"], classes)
               if options["class_weight"] == "balanced" else None)
    model = build_compiled_model(options, len(classes))
    run_dir.mkdir(parents=True, exist_ok=True)  # only now: a refused CSV or option leaves no folder behind
    if done is None:
        write_config(run_dir, {**options, "out": str(run_dir)}, options["labels"], df, classes, policy, weights)
        save_classes(run_dir, classes)
        log(f"training {options['arch']} on {len(classes)} classes into {run_dir} (precision {policy})")
    else:
        log(f"resuming {run_dir} after epoch {done}")
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # The loader's length is unknown until its first pass (undecodable images are skipped), which
        # Keras reports as running out of data at the end of epoch 1: expected, not a problem.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(train_ds, validation_data=val_ds, epochs=options["epochs"], class_weight=weights, shuffle=False,
                  callbacks=training_callbacks(run_dir, options["patience"], done) + callbacks,
                  verbose=1 if sys.stderr.isatty() else 2)
    seconds = time.perf_counter() - started
    history = pd.read_csv(run_dir / HISTORY)
    best = history.loc[history["val_loss"].idxmin()]
    log(f"{len(history)} epochs in history.csv; model.keras is epoch {int(best.epoch) + 1} "
        f"(val_loss {best.val_loss:.4f}, val_accuracy {best.val_accuracy:.4f}); this attempt took {seconds:.0f} s")
    rows, split = report_rows(df)
    metrics = score(load_run_model(run_dir), rows, classes, options["image_size"], options["batch_size"],
                    options["skip_missing"])
    metrics.update(split=split, labels=str(options["labels"]), train_seconds=round(seconds, 1),
                   epochs_run=len(history), best_epoch=int(best.epoch) + 1)
    write_reports(run_dir, metrics, classes, run_dir / HISTORY)
    for line in summary_lines(metrics):
        log(line)
    log(f"run folder: {run_dir} (report.txt, metrics.json, curves.png, confusion.png)")
    return run_dir, metrics
