"""The run folder contract (atomic writes, config and classes files, labels CSV checks) and every CLI's UsageError."""
import contextlib
import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path

REQUIRED_COLUMNS = ("path", "label", "split")
SPLITS = ("train", "val", "test")


class UsageError(ValueError):
    """A user mistake (bad path, bad CSV, bad option): the CLI prints it on one line and exits 2."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the same folder; on success it replaces `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask():
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def write_text(path, text):
    """Write a text file atomically (never a half-written file)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj):
    """Write `obj` as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def write_csv(path, frame, **options):
    """Write a pandas DataFrame as CSV, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **options)


def read_json(path):
    """Read a JSON file; a missing one is a user error naming the run folder."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} not found: is {path.parent} a train-cnn run folder?")
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path):
    """Hex SHA-256 of a file, so a run records exactly which labels CSV it saw."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions():
    """Versions of the packages that shape a run's results, for config.json."""
    import keras
    import numpy
    import pandas
    import tensorflow

    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__}


def read_labels(path, base=None):
    """Load a labels CSV and check its columns; image paths are resolved against `base` (default: cwd)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"labels CSV {path} not found; create it with make-labels or pass --labels")
    try:
        df = pd.read_csv(path, dtype={"path": str, "label": str, "split": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UsageError(f"{path} is not a readable CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UsageError(f"{path} lacks column(s) {', '.join(missing)}; a labels CSV needs "
                         f"{', '.join(REQUIRED_COLUMNS)} (make-labels writes them)")
    if base is not None:
        df["path"] = [os.path.join(base, p) for p in df["path"]]
    return df


def check_training_splits(df, source):
    """Refuse a CSV that cannot train: no train or val rows, or a val/test class never seen in train."""
    counts = df["split"].value_counts()
    odd = sorted(set(counts.index) - set(SPLITS))
    if odd:
        raise UsageError(f"{source}: split values must be {', '.join(SPLITS)}; found {', '.join(map(repr, odd[:5]))}")
    for split in ("train", "val"):
        if not counts.get(split, 0):
            raise UsageError(f"{source} has no '{split}' rows; train-cnn needs train and val splits "
                             f"(make-labels --split auto makes them)")
    train_classes = set(df.loc[df.split == "train", "label"])
    for split in ("val", "test"):
        unseen = sorted(set(df.loc[df.split == split, "label"]) - train_classes)
        if unseen:
            raise UsageError(f"{source}: class(es) {', '.join(unseen[:5])} appear in '{split}' but not "
                             f"in 'train'; the model cannot learn them (re-split or drop them)")
    return sorted(train_classes)


def select_split(df, split, source):
    """Rows of one split, or every row for 'all'; none is a user error."""
    rows = df if split == "all" else df[df["split"] == split]
    if rows.empty:
        raise UsageError(f"{source} has no rows in split '{split}'")
    return rows


def check_known_labels(df, classes, source):
    """Every label must be one of the run's classes, else the model cannot be scored on it."""
    unknown = sorted(set(df["label"]) - set(classes))
    if unknown:
        shown = ", ".join(unknown[:8]) + (" ..." if len(unknown) > 8 else "")
        raise UsageError(f"{source} has {len(unknown)} label(s) the run never learned: {shown}")


def save_classes(run_dir, classes):
    """classes.json: output index (as a string key) -> class name."""
    write_json(Path(run_dir) / "classes.json", {str(i): name for i, name in enumerate(classes)})


def load_classes(run_dir):
    """The class names in model-output order, from classes.json."""
    mapping = read_json(Path(run_dir) / "classes.json")
    return [mapping[str(i)] for i in range(len(mapping))]


def load_config(run_dir):
    """The run's config.json as a dict."""
    return read_json(Path(run_dir) / "config.json")
