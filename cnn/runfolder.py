"""The training run folder: its file names, reading its parts (checked against each other), naming and locking."""
import contextlib
import functools
import json
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from common.atomic import write_json
from common.errors import UsageError
from common.keras_model import RUN_MODEL_FILE, load_keras_model
from common.keras_private import BACKUP_COPY, BACKUP_METADATA, BACKUP_WEIGHTS

# Every file a run folder holds (see README, "The run folder").
CONFIG = "config.json"
CLASSES = "classes.json"
MODEL = RUN_MODEL_FILE
HISTORY = "history.csv"
METRICS = "metrics.json"
REPORT = "report.txt"
CURVES = "curves.png"
CONFUSION_PNG = "confusion.png"
CONFUSION_CSV = "confusion.csv"
BACKUP = "backup"  # Keras's BackupAndRestore state while a run is unfinished
PHASE = "phase.json"  # --fine-tune runs: where the second phase began (written when it begins)
CALIBRATION = "calibration.json"  # the temperature fitted on the val split (--calibrate temperature)
RELIABILITY = "reliability.png"  # the reliability diagram of the report's split
REPORT_HTML = "report.html"  # the run on one self-contained page (cnn.evaluation.html_report)
AUDITS = "audits.json"  # the audit-data / audit-labels folders evaluate-cnn --audit attached, with their figures
AUDIT_DATA = "audit.json"  # audit-data's figures, in its output folder (beside duplicates.png)
AUDIT_LABELS = "audit_labels.json"  # audit-labels' figures, in its output folder (beside suspects.png)
ERROR_MAPS = "worst_errors.png"  # the most confident mistakes with heatmaps of the predicted class (a flat run's)
FINISHED = "finished.json"  # written last, after every report file: the run is finished (model.keras's sha256)
LOCK = ".lock"  # held by the one process training into the folder
HIERARCHY = "hierarchy.csv"  # a hierarchical run's mapping as resolved (label,parent), usable as --hierarchy
SUB_LABELS = "labels.csv"  # a hierarchical run's sub-model folder: the rows that sub-model trains on
COMPARE = "compare"  # evaluate-cnn --compare: compare.txt and compare.json beside the report
RUNS = Path("runs")  # where runs go without --out


def read_json(path):
    """Read a run-folder JSON file; a missing or unreadable one is a user error naming the folder."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} not found: is {path.parent} a train-cnn run folder?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"{path} is not valid JSON; the run folder is damaged (retrain, or restore the file)") from None


def save_classes(run_dir, classes):
    """classes.json: output index (as a string key) -> class name."""
    write_json(Path(run_dir) / CLASSES, {str(i): name for i, name in enumerate(classes)})


def load_classes(run_dir):
    """The class names in model-output order; keys must be 0..n-1 and names distinct, non-empty strings."""
    path = Path(run_dir) / CLASSES
    mapping = read_json(path)
    if not isinstance(mapping, dict) or set(mapping) != {str(i) for i in range(len(mapping))}:
        raise UsageError(f"{path} must map the output indices 0..n-1 to class names; the run folder is damaged")
    names = [mapping[str(i)] for i in range(len(mapping))]
    if len(names) < 2 or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise UsageError(f"{path} must hold at least 2 distinct, non-empty class names; the run folder is damaged")
    return names


def load_config(run_dir):
    """The run's config.json as a dict."""
    return read_json(Path(run_dir) / CONFIG)


@dataclass
class Run:
    """A finished run folder's parts, checked against each other: config, classes and (optionally) the model."""

    path: Path
    config: dict
    classes: list
    model: object = None

    @property
    def image_size(self):
        return int(self.config["options"]["image_size"])

    @property
    def source(self):
        """The folder a deployment came from (an ensemble's is its --repeats folder)."""
        return self.path

    @functools.cached_property
    def temperature(self):
        """The temperature its probabilities are served at: calibration.json's, or 1 (raw softmax); checked to be a
        finite number > 0 and, for runs that recorded it, the one finished.json recorded."""
        path, finished = self.path / CALIBRATION, self.path / FINISHED
        value = checked_temperature(_field(path, "temperature"), path) if path.is_file() else 1.0
        recorded = _field(finished, "temperature") if finished.is_file() else None
        if recorded is not None and value != recorded:
            raise UsageError(f"{path} says temperature {value} but the run finished with {recorded} "
                             f"({finished}); restore calibration.json or retrain the run")
        return value


def _field(path, key):
    """`key` of a JSON object file, None when absent or when the file holds no object."""
    data = read_json(path)
    return data.get(key) if isinstance(data, dict) else None


def checked_temperature(value, where):
    """A calibrated temperature read from `where`: a finite number > 0 (0, a negative or NaN one would turn the
    probabilities to NaN or reverse their ranking), else a user error naming the file."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{where}: temperature {value!r} is not a finite number > 0; the file is damaged (restore "
                         f"it, or retrain the run)")
    return float(value)


def load_run(run_dir, model=True):
    """Open a run folder for evaluate, predict, show-batch and export; a damaged or mismatched part is refused."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a folder; give a train-cnn run folder")
    run = Run(run_dir, load_config(run_dir), load_classes(run_dir))
    check_recorded_classes(run)
    if not model:
        return run
    path = run_dir / MODEL
    if not path.is_file():
        models = run.config.get("hierarchy", {}).get("models")
        if models:
            raise UsageError(f"{run_dir} is a hierarchical run: its models are in its sub-folders "
                             f"({', '.join(models)}); give one of those")
        raise UsageError(f"{path} not found: {run_dir} is not a finished train-cnn run folder")
    run.model = load_keras_model(path)
    check_model_file(run_dir)
    check_model(run)
    return run


def check_recorded_classes(run):
    """classes.json must name the classes config.json recorded, in the same order (runs from before the record
    have none to compare)."""
    recorded = run.config.get("classes")
    if recorded is not None and recorded != run.classes:
        raise UsageError(f"{run.path / CLASSES} names {', '.join(run.classes)} but {CONFIG} recorded "
                         f"{', '.join(recorded)} (the order of the model's outputs); the file was edited or comes "
                         f"from another run: restore it")


def check_model_file(run_dir):
    """model.keras must be the file the finished run recorded (its sha256 in finished.json)."""
    from common.hashing import sha256_file

    marker = Path(run_dir) / FINISHED
    recorded = read_json(marker).get("model_sha256") if marker.is_file() else None
    if recorded is not None and sha256_file(Path(run_dir) / MODEL) != recorded:
        raise UsageError(f"{Path(run_dir) / MODEL} is not the model this run finished with (its sha256 differs "
                         f"from {FINISHED}'s); restore it, or retrain")


def check_model(run):
    """The loaded model must give one output per class and take the input size config.json recorded."""
    outputs = run.model.outputs[0].shape[-1]
    if outputs != len(run.classes):
        raise UsageError(f"{run.path}: {CLASSES} names {len(run.classes)} classes but {MODEL} has {outputs} outputs; "
                         f"the folder mixes two runs (retrain, or restore the matching {CLASSES})")
    takes = tuple(run.model.inputs[0].shape[1:3])
    if None not in takes and takes != (run.image_size, run.image_size):
        raise UsageError(f"{run.path}: {CONFIG} records --image-size {run.image_size} but {MODEL} takes "
                         f"{takes[0]}x{takes[1]} images; the folder mixes two runs (restore {CONFIG}, or retrain)")


def mark_finished(run_dir):
    """Write the finished marker, last, after every report file: the model's sha256, the calibrated temperature
    (so a changed calibration.json is refused) and the time."""
    import datetime

    from common.hashing import sha256_file

    model, calibration = Path(run_dir) / MODEL, Path(run_dir) / CALIBRATION
    write_json(Path(run_dir) / FINISHED, {
        "model_sha256": sha256_file(model) if model.is_file() else None,
        "temperature": _field(calibration, "temperature") if calibration.is_file() else None,
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds")})


def model_loads(run_dir):
    """True when the run's model.keras exists and loads (a file truncated by a kill does not)."""
    try:
        load_keras_model(Path(run_dir) / MODEL)
    except UsageError:
        return False
    return True


def remove_partial_files(run_dir):
    """Delete temporary files that a killed atomic write left (common.atomic names them `.NAME.*`)."""
    for path in Path(run_dir).glob(".*.*"):
        if path.name != LOCK and path.is_file():
            path.unlink()


def finished_epochs(run_dir):
    """Epochs completed before an interruption, or None when there is nothing to resume (no backup/).

    The trainer makes backup/ before the first epoch and removes it only once every phase is fitted, so
    backup/ means "training not over". Its state is Keras's (BackupAndRestore with .bkp copies): a kill while
    Keras writes it falls back to the .bkp pair; a kill before the phase's first backup (or a backup left
    from the phase before, at or below the start of --fine-tune's phase) resumes at the phase's start.
    """
    backup = Path(run_dir) / BACKUP
    if not backup.is_dir():
        return None
    start = int(read_json(Path(run_dir) / PHASE)["start_epoch"]) if (Path(run_dir) / PHASE).is_file() else 0
    epoch = backup_epoch(backup)
    if epoch is None or epoch <= start:
        clear_backup(run_dir)
        return start
    return epoch


def backup_epoch(backup):
    """The epoch Keras's backup holds: from training_metadata.json, else (a kill broke it) from its .bkp copy,
    put back in place together with the weights' copy so Keras restores a matching pair; None when neither."""
    import shutil

    for suffix in ("", BACKUP_COPY):
        epoch = _metadata_epoch(backup / f"{BACKUP_METADATA}{suffix}")
        if epoch is not None:
            if suffix:
                for name in (BACKUP_WEIGHTS, BACKUP_METADATA):
                    if (backup / f"{name}{suffix}").is_file():
                        shutil.copyfile(backup / f"{name}{suffix}", backup / name)
            return epoch
    return None


def _metadata_epoch(path):
    """`epoch` of a Keras training_metadata.json, or None when it is missing or cut short."""
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear_backup(run_dir):
    """Empty backup/ (keeping the folder, which marks training as not over)."""
    import shutil

    backup = Path(run_dir) / BACKUP
    backup.mkdir(parents=True, exist_ok=True)
    for path in backup.iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def remove_backup(run_dir):
    """Training is over (every phase fitted): remove backup/, then only the reports remain to write."""
    import shutil

    shutil.rmtree(Path(run_dir) / BACKUP, ignore_errors=True)


def report_pending(run_dir):
    """True when training is over but the run is not finished: a kill came after the last epoch, before the
    finished marker, so rerunning the command writes the reports."""
    run_dir = Path(run_dir)
    return ((run_dir / CONFIG).is_file() and (run_dir / HISTORY).is_file() and not (run_dir / BACKUP).exists()
            and not run_finished(run_dir) and model_loads(run_dir))


def run_finished(run_dir):
    """True when the run folder holds a finished run: its finished marker, written after every report file."""
    return (Path(run_dir) / FINISHED).is_file()


def default_run_dir(arch, runs=RUNS):
    """runs/<arch>-<n>, n one more than the highest already there."""
    taken = [int(p.name.rsplit("-", 1)[1]) for p in runs.glob(f"{arch}-*") if p.name.rsplit("-", 1)[1].isdigit()]
    return runs / f"{arch}-{max(taken, default=0) + 1}"


def latest_interrupted_run(runs=RUNS):
    """The most recently modified run folder under runs/ that holds a backup/ to resume; a hierarchical run
    (a folder with its own config.json around sub-model folders) counts when one of its sub-models does."""
    backups = [(p.parent, p) for p in runs.glob(f"*/{BACKUP}") if p.is_dir()]
    backups += [(p.parent.parent, p) for p in runs.glob(f"*/*/{BACKUP}") if (p.parent.parent / CONFIG).is_file()]
    if not backups:
        raise UsageError(f"no interrupted run under {runs}/ (none has a {BACKUP}/ folder); pass --out RUN")
    return max(backups, key=lambda pair: pair[1].stat().st_mtime)[0]


@contextlib.contextmanager
def locked(run_dir):
    """Hold the run folder's lock for the block; a second trainer into the same folder is refused at once. A folder
    made here that a refusal (UsageError) leaves holding only the lock is removed."""
    import fcntl

    run_dir = Path(run_dir)
    made = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK, "a+") as handle:
        _take_lock(handle, run_dir)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield run_dir
        except UsageError:  # refused before anything was written: leave no empty folder behind
            if made and [p.name for p in run_dir.iterdir()] == [LOCK]:
                (run_dir / LOCK).unlink()
                run_dir.rmdir()
            raise
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def refuse_if_in_use(run_dir):
    """Refuse at once a run folder another train-cnn holds, before judging what it contains (a run in progress
    already has a model.keras)."""
    import fcntl

    if not (Path(run_dir) / LOCK).is_file():
        return
    with open(Path(run_dir) / LOCK, "a+") as handle:
        _take_lock(handle, run_dir)
        fcntl.flock(handle, fcntl.LOCK_UN)


def _take_lock(handle, run_dir):
    """Take the lock file's exclusive lock without waiting; a held one is a user error naming its pid."""
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        raise UsageError(f"{run_dir} is in use by another train-cnn (pid {handle.read().strip() or '?'}); "
                         f"wait for it or choose another --out") from None


def code_version():
    """This code's identity for config.json: the package's version and, in a git checkout, its commit (with
    "+changes" when cnn/ or common/ differ from it), so results of different code are never pooled unseen."""
    import subprocess
    from importlib import metadata

    try:
        version = f"clothing-cnn {metadata.version('clothing-cnn')}"
    except metadata.PackageNotFoundError:
        version = "clothing-cnn (not installed)"
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return version
    try:
        def git(*args):
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", "cnn", "common")
    except (OSError, subprocess.CalledProcessError):
        return version
    return f"{version}, git {commit}{'+changes' if changed else ''}"


def run_identity(config):
    """What a finished run's numbers depend on besides its options and data: code and package versions."""
    versions = config.get("versions", {})
    return (f"{config.get('code', 'code version not recorded')}; tensorflow {versions.get('tensorflow', '?')}, "
            f"keras {versions.get('keras', '?')}")


DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel")}


def package_versions():
    """Versions of the packages that shape a run's results, for config.json (jax's on the jax backend)."""
    import importlib.metadata

    def version(name):  # TensorFlow installs as tensorflow, tensorflow-cpu (requirements.txt) or others
        for distribution in DISTRIBUTIONS.get(name, (name,)):
            try:
                return importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                pass
        return None

    import keras

    names = ("tensorflow", "keras", "numpy", "pandas") + (("jax",) if keras.backend.backend() == "jax" else ())
    return {"python": platform.python_version(), **{name: version(name) for name in names}}
