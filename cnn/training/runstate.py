"""A run's state before training: a fresh or continued run's options and rows, the run folder's checks, its
config.json, and "is this finished run the same run?" (for repeats, sweeps and hierarchical sub-models)."""
import datetime
import os
import sys
from dataclasses import fields
from pathlib import Path

from cnn import runfolder as rf
from cnn.data.hierarchy import mapping_differences
from cnn.data.labels_csv import read_labels
from cnn.training.options import RESUMABLE, TrainOptions, differences, flag
from common.atomic import write_json
from common.destinations import check_output_folder, check_writable_folder
from common.errors import UsageError
from common.hashing import sha256_file
from common.tfenv import quiet_backend


def fresh_run(typed):
    """(options, labels DataFrame) of a new run; --init RUN without --arch takes RUN's architecture."""
    if typed.get("init", "none") != "none" and "arch" not in typed:
        typed = {**typed, "arch": init_architecture(typed["init"])}
    options = TrainOptions(**typed).check_paths()
    return options, checked_files(read_labels(options.labels), options)


def init_architecture(run_dir):
    """The --arch the run folder `run_dir` (--init's) was trained with."""
    return rf.load_config(run_dir)["options"].get("arch", "cnn")


def continued_run(run_dir, typed):
    """(options, labels DataFrame) of an interrupted run: its recorded options and the very same labels CSV."""
    config = rf.load_config(run_dir)
    check_same_backend(config, run_dir)
    recorded = recorded_options(config, run_dir)
    differ = differences(recorded, typed, allowed=RESUMABLE)
    if differ:
        raise UsageError(f"{run_dir} is an interrupted run with other options: {'; '.join(differ)}; continue it "
                         f"with its own (only {', '.join(map(flag, RESUMABLE))} may change) or choose another --out")
    options = TrainOptions(**{**recorded, **typed}).check_paths()
    entry = config["labels"]
    path = Path(entry["resolved"])
    if not path.is_file() or sha256_file(path) != entry["sha256"]:
        raise UsageError(f"{path}, the labels CSV {run_dir} was trained on, is missing or changed since (sha256 "
                         f"differs); restore it to continue, or start a new run with another --out")
    check_same_teacher(config, options, run_dir)
    same_cwd = os.path.realpath(os.getcwd()) == os.path.realpath(entry["cwd"])
    return options, checked_files(read_labels(path, base=None if same_cwd else entry["cwd"]), options)


def check_same_teacher(config, options, run_dir):
    """An interrupted --teacher run continues only with the teacher it started with (its members' model.keras
    SHA-256 in config.json): a replaced run, or a --repeats folder that gained or lost a member, is refused."""
    from cnn.training.tricks.teacher import teacher_identity

    if options.teacher == "none" or "teacher" not in config:  # runs from before the record: the check of old
        return
    if teacher_identity(options.teacher) != config["teacher"]:
        raise UsageError(f"--teacher {options.teacher} is not the teacher {run_dir} started with (its members or "
                         f"their model.keras differ from config.json's record); restore it, or start a new run with "
                         f"another --out")


def keras_backend():
    """The Keras backend this process trains on (KERAS_BACKEND, read when Keras is first imported); TensorFlow is
    imported quietly first, so its start-up notices never precede a refusal on the resume path."""
    quiet_backend()
    import keras

    return keras.backend.backend()


def check_same_backend(config, run_dir):
    """An interrupted run continues on the backend it started on (its backup holds that backend's state); runs
    from before the record were TensorFlow's."""
    recorded, running = config.get("backend", "tensorflow"), keras_backend()
    if recorded != running:
        raise UsageError(f"{run_dir} started on Keras's {recorded} backend, this process runs {running}; continue "
                         f"it with KERAS_BACKEND={recorded}")


def recorded_options(config, run_dir):
    """The options config.json recorded, as TrainOptions keywords; runs from before --recipe were the card's, runs
    from before --whiten were not whitened."""
    known = {f.name for f in fields(TrainOptions)}
    recorded = {k: v for k, v in config["options"].items() if k != "out"}
    unknown = sorted(set(recorded) - known)
    if unknown:
        raise UsageError(f"{run_dir} was recorded by another version of train-cnn (options {', '.join(unknown)}); "
                         f"continue it with that version or start a new run")
    return {"recipe": "card", "whiten": False, **recorded}


def checked_files(df, options):
    """The rows whose image exists: missing files are refused (or dropped with --skip-missing) before any work.
    Training from --data shards needs no image file."""
    from cnn.data.loader import check_files

    return df if options.data != "none" else check_files(df, skip_missing=options.skip_missing)


def check_run_dir(run_dir, done, classes):
    """Refuse a folder in use by another trainer, a finished run folder, or an interrupted one trained on other
    classes."""
    check_output_folder(run_dir, "--out")
    if run_dir.is_dir():
        check_writable_folder(run_dir, "--out")
    rf.refuse_if_in_use(run_dir)
    if done is not None:
        check_same_classes(run_dir, classes)
        return
    if rf.run_finished(run_dir) or ((run_dir / rf.MODEL).exists() and rf.model_loads(run_dir)):
        raise UsageError(f"{run_dir} already holds a trained model; choose another --out")


def check_same_classes(run_dir, classes):
    """An interrupted run continues only on the classes it was trained on."""
    if rf.load_classes(run_dir) != classes:
        raise UsageError(f"the labels CSV's classes differ from those {run_dir} was trained on; "
                         f"resume with the same labels CSV")


def check_same_run(folder, options, allowed=()):
    """Refuse to count a finished run trained with other options (but `allowed`), another labels CSV or
    another hierarchy mapping."""
    config = rf.load_config(folder)
    differ = differences(recorded_options(config, folder), options.to_dict(), allowed)
    if not differ and Path(options.labels).is_file() and sha256_file(options.labels) != config["labels"]["sha256"]:
        differ = [f"the labels CSV {options.labels} (its sha256 differs from the one recorded)"]
    differ = differ or mapping_differences(config, options)
    if differ:
        raise UsageError(f"{folder} holds a finished run with other settings: {'; '.join(differ)}; "
                         f"choose another --out to keep results apart")


def write_config(run_dir, options, df, classes, policy, class_weight, **extra):
    """config.json: every resolved option, the labels CSV's path and hash, precision, the starting weights'
    files, package and code versions (and `extra`)."""
    from cnn.models.transfer import provenance
    from cnn.training.tricks.teacher import teacher_identity

    write_json(run_dir / rf.CONFIG, {
        "options": {**options.to_dict(), "out": str(run_dir)},
        "labels": {"path": options.labels, "resolved": str(Path(options.labels).resolve()), "cwd": os.getcwd(),
                   "sha256": sha256_file(options.labels), "rows": df["split"].value_counts().to_dict()},
        "num_classes": len(classes),
        "classes": list(classes),  # classes.json must agree (cnn.runfolder.check_recorded_classes)
        "precision": policy,
        "backend": keras_backend(),
        "class_weight": class_weight,
        "starting_weights": provenance(options),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "versions": rf.package_versions(),
        "code": rf.code_version(),
        **({"teacher": teacher_identity(options.teacher)} if options.teacher != "none" else {}),
        **extra,
    })
