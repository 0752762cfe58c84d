"""The labels CSV as the trainer reads it: load and check columns, splits and labels, select a split."""
import os
import warnings
from pathlib import Path

from cnn.runfolder import load_config
from common.console import writer
from common.errors import UsageError
from common.hashing import sha256_file
from common.schema import REQUIRED_COLUMNS, SPLITS

SHOW = 5  # offending values named in a message
warn = writer("evaluate-cnn", "warning: ")  # run_labels' note that the run's CSV changed


def read_labels(path, base=None):
    """Load a labels CSV and check its columns and labels; image paths resolve against `base` (default: cwd)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"labels CSV {path} not found; create it with make-labels or give its path")
    try:
        with warnings.catch_warnings():  # a row longer than the header: pandas would drop cells or shift columns
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, dtype={"path": str, "label": str, "split": str}, keep_default_na=False,
                             index_col=False)
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UsageError(f"{path} is not a readable CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UsageError(f"{path} lacks column(s) {', '.join(missing)}; a labels CSV needs "
                         f"{', '.join(REQUIRED_COLUMNS)} (make-labels writes them)")
    for column in ("label", "split"):  # " Dress " is Dress: padding never makes a class or a split of its own
        df[column] = df[column].str.strip()
    _check_cells(df, path)
    if base is not None:
        df["path"] = [os.path.join(base, p) for p in df["path"]]
    _check_unique_images(df, path)
    return df


def _check_unique_images(df, source):
    """Each image once, compared as the file it resolves to: a repeated row would count twice, and one in two
    splits would be scored on an image the model trained on."""
    import pandas as pd

    resolved = pd.Series([os.path.realpath(p) for p in df["path"]])
    repeated = [int(i) for i in resolved.index[resolved.duplicated()]]
    if not repeated:
        return
    first = {path: int(i) for i, path in resolved.drop_duplicates().items()}

    def row(i):
        return f"{df['split'].iloc[i]}/{df['label'].iloc[i]}"

    shown = "; ".join(f"line {i + 2} repeats line {first[resolved[i]] + 2} ({df['path'].iloc[i]}: "
                      f"{row(first[resolved[i]])} then {row(i)})" for i in repeated[:SHOW])
    raise UsageError(f"{source}: {len(repeated)} row(s) name an image already listed ({shown}); each image must "
                     f"appear once, in one split with one label: drop the extra rows")


def _check_cells(df, source):
    """Every row needs a path and a label (an empty cell would train a class named ''), and a path is a file name."""
    for column in ("path", "label"):
        blank = df.index[df[column].str.strip() == ""]
        if len(blank):
            rows = ", ".join(str(i + 2) for i in blank[:SHOW])  # +2: the header is line 1
            raise UsageError(f"{source}: {len(blank)} row(s) have an empty {column} (line(s) {rows}); "
                             f"fill or drop them")
    bad = df.index[df["path"].str.contains("\x00", regex=False)]
    if len(bad):
        raise UsageError(f"{source}: line {bad[0] + 2} has a path with a NUL character; fix or drop it")


def check_training_splits(df, source):
    """The sorted classes; refuses a CSV that cannot train (no train/val rows, one class, a class missing from
    train or from val)."""
    counts = df["split"].value_counts()
    odd = sorted(set(counts.index) - set(SPLITS))
    if odd:
        raise UsageError(f"{source}: split values must be {', '.join(SPLITS)}; found {', '.join(map(repr, odd[:SHOW]))}")
    for split in ("train", "val"):
        if not counts.get(split, 0):
            raise UsageError(f"{source} has no '{split}' rows; train-cnn needs train and val splits "
                             f"(make-labels --split auto makes them)")
    train_classes = sorted(set(df.loc[df.split == "train", "label"]))
    if len(train_classes) < 2:
        raise UsageError(f"{source}: the train split has {len(train_classes)} class ({', '.join(train_classes)}); "
                         f"a classifier needs at least 2")
    for split in ("val", "test"):
        unseen = sorted(set(df.loc[df.split == split, "label"]) - set(train_classes))
        if unseen:
            raise UsageError(f"{source}: class(es) {', '.join(unseen[:SHOW])} appear in '{split}' but not "
                             f"in 'train'; the model cannot learn them (re-split or drop them)")
    unchecked = sorted(set(train_classes) - set(df.loc[df.split == "val", "label"]))
    if unchecked:
        raise UsageError(f"{source}: class(es) {', '.join(unchecked[:SHOW])} appear in 'train' but not in 'val'; "
                         f"early stopping, the best checkpoint and calibration could not see them (re-split, e.g. "
                         f"make-labels --split auto, or drop them)")
    return train_classes


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
        warn(f"{path} changed since training (sha256 differs)")
    return df, str(path)


def extra_csvs(text):
    """The labels CSVs of --also-score: a comma-separated list, or none."""
    return [] if text in ("none", "", None) else [part.strip() for part in text.split(",") if part.strip()]


def check_extra_csvs(csvs, classes):
    """Refuse, before any work, an --also-score CSV that cannot be read or names a class the run does not know."""
    for csv in csvs:
        check_known_labels(read_labels(csv), classes, csv)
