"""train-cnn's options: one typed source for the defaults, the checks, the command line and config.json.

`TrainOptions` is the single block of defaults (as in nanoGPT); `add_to_parser` builds train-cnn's
arguments from it with no defaults of their own, so the parsed namespace holds exactly what the user
typed, which is what `--resume` needs to know.
"""
import argparse
import math
import os
from dataclasses import asdict, dataclass, field, fields

from cnn.models import ARCHITECTURES, MIN_IMAGE_SIZE
from cnn.precision import PRECISIONS
from common.errors import UsageError

MAX_IMAGE_SIZE = 1024  # beyond this the card's Dense layer alone outgrows a machine's memory
MAX_SEED = 2**32 - 1  # what numpy and TensorFlow accept
RESUMABLE = ("epochs", "patience")  # options an interrupted run may change when it continues


def option(default, help, **argparse_kw):
    """A TrainOptions field with its --help text and argparse settings (type, choices, metavar)."""
    return field(default=default, metadata={"help": help, **argparse_kw})


@dataclass(frozen=True)
class TrainOptions:
    """Every option of a training run; config.json records them and --resume replays them."""

    labels: str = option("labels.csv", "labels CSV (path,label,split); image paths resolve from the current folder")
    epochs: int = option(20, "maximum epochs")
    batch_size: int = option(32, "images per batch")
    image_size: int = option(256, "images are resized to SIZE x SIZE pixels")
    lr: float = option(1e-3, "Adam learning rate")
    patience: int = option(3, "stop after this many epochs without a lower validation loss")
    seed: int = option(0, f"random seed for weights, shuffling and augmentation (0..{MAX_SEED})")
    arch: str = option("cnn", "model architecture", choices=tuple(ARCHITECTURES))
    augment: str = option("none", "training-only augmentation: none, default, or a spec like "
                          "flip,rotation=0.1,zoom=0.2,shear=0.2,shift=0.1")
    class_weight: str = option("none", "balanced weighs each class's loss by n/(classes*n_class)",
                               choices=("none", "balanced"))
    precision: str = option("auto", "auto picks mixed_bfloat16 where the CPU/GPU supports it, float32 otherwise",
                            choices=PRECISIONS)
    dropout: float = option(0.0, "dropout rate before the classifier, in [0, 1) (0 = none)")
    batch_norm: bool = option(False, "batch normalisation after each convolution")
    skip_missing: bool = option(False, "drop rows whose image file is missing instead of refusing")
    cache: str = option("none", "cache decoded, resized images: none, memory, or a file PATH prefix "
                        "(its folder must exist; files are keyed by the rows and size they hold)")

    def __post_init__(self):
        self.check()

    def check(self):
        """Refuse impossible values with a one-line UsageError naming the option (before any work starts)."""
        for name in ("epochs", "batch_size", "patience"):
            _require(getattr(self, name) >= 1, name, getattr(self, name), "must be 1 or more")
        low = MIN_IMAGE_SIZE[self.arch]
        _require(low <= self.image_size <= MAX_IMAGE_SIZE, "image_size", self.image_size,
                 f"must be between {low} (the smallest input --arch {self.arch} can take) and {MAX_IMAGE_SIZE}")
        _require(math.isfinite(self.lr) and self.lr > 0, "lr", self.lr, "must be a finite number > 0")
        _require(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"must be in 0..{MAX_SEED}")
        _require(0 <= self.dropout < 1, "dropout", self.dropout, "must be in [0, 1)")
        folder = os.path.dirname(os.path.abspath(self.cache))
        _require(self.cache in ("none", "memory") or os.path.isdir(folder), "cache", self.cache,
                 f"folder {folder} does not exist; create it or use --cache memory")
        for f in fields(self):
            choices = f.metadata.get("choices")
            _require(not choices or getattr(self, f.name) in choices, f.name, getattr(self, f.name),
                     f"must be one of {', '.join(choices or ())}")

    def to_dict(self):
        """The options as a plain dict (config.json's "options")."""
        return asdict(self)


def _require(ok, name, value, rule):
    """Raise the one-line UsageError for option `name` unless `ok`."""
    if not ok:
        raise UsageError(f"--{name.replace('_', '-')} {value}: {rule}")


def flag(name):
    """The command-line flag of an option: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


def add_to_parser(parser):
    """Add one argument per TrainOptions field, with no default: the namespace holds only what was typed."""
    for f in fields(TrainOptions):
        meta = dict(f.metadata)
        text = meta.pop("help")
        if f.type is bool:
            parser.add_argument(flag(f.name), action="store_true", default=argparse.SUPPRESS, help=text)
        else:
            parser.add_argument(flag(f.name), type=f.type, default=argparse.SUPPRESS,
                                help=f"{text} (default: {f.default})", **meta)


def typed_options(namespace):
    """The TrainOptions values present in a parsed namespace (what the user typed), as a dict."""
    names = {f.name for f in fields(TrainOptions)}
    return {k: v for k, v in vars(namespace).items() if k in names}
