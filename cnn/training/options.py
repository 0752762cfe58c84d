"""train-cnn's options: one typed source for the defaults, the checks, the command line and config.json.

`TrainOptions` is the single block of defaults (as in nanoGPT); `add_to_parser` builds train-cnn's
arguments from it with no defaults of their own, so the parsed namespace holds exactly what the user
typed, which is what `--resume` needs to know.
"""
import argparse
import math
import os
from dataclasses import asdict, dataclass, field, fields

from cnn.data.hierarchy import FLAT, option_problem
from cnn.data.mix import parse_mix
from cnn.data.shards import packed_size, rows_csv
from cnn.models.architectures import ARCHITECTURES, DEFAULT_ARCH, DEFAULT_IMAGE_SIZE, MIN_IMAGE_SIZE, PRETRAINED
from cnn.training.distribute.multiworker import UNSUPPORTED
from cnn.training.distribute.strategy import STRATEGIES
from cnn.training.precision import PRECISIONS
from cnn.training.recipes import FROM_RECIPE, RECIPES
from cnn.training.refusal import flag, require
from cnn.training.tricks import check_tricks, from_recipe
from common.keras_model import RUN_MODEL_FILE

MAX_IMAGE_SIZE = 1024  # beyond this the card's Dense layer alone outgrows a machine's memory
MAX_SEED = 2**32 - 1  # what numpy and TensorFlow accept
RESUMABLE = ("epochs", "patience", "also_score", "skip_missing")  # options an interrupted run may change
def option(default, help, **argparse_kw):
    """A TrainOptions field with its --help text and argparse settings (type, choices, metavar)."""
    return field(default=default, metadata={"help": help, **argparse_kw})


@dataclass(frozen=True)
class TrainOptions:
    """Every option of a training run; config.json records them and --resume replays them."""

    labels: str = option("labels.csv", "labels CSV (path,label,split); image paths resolve from the current folder")
    epochs: int = option(FROM_RECIPE, "maximum epochs", default_text="20; 120 with --recipe long")
    batch_size: int = option(32, "images per batch")
    image_size: int = option(None, "images are resized to SIZE x SIZE pixels", default_text="256; 299 for xception "
                             "and inceptionv3, 224 for the other keras.applications architectures")
    progressive: str = option(FROM_RECIPE, "progressive resizing: SIZE[,SIZE...]:FRACTION trains the first FRACTION "
                              "of --epochs at the smaller SIZEs (in equal parts) and the rest at --image-size, e.g. "
                              "128:0.5; validation is always at --image-size; none: every epoch at --image-size",
                              default_text="128:0.75 with --recipe long, none otherwise")
    recipe: str = option(None, "default: augmentation, dropout, AdamW, label smoothing, warm-up + cosine, a frozen "
                         "whitening first layer; long: the default without the whitening over 120 epochs, the first "
                         "90 at 128 px (about 3x the default's time; better on the dataset's test split, worse than "
                         "the default on photos from elsewhere); "
                         "card: the write-up's Adam 1e-3 with nothing else; transfer: the tutorials' frozen "
                         "pretrained backbone, Adam 5e-4, shear/zoom/flip; options below override it",
                         choices=tuple(RECIPES), default_text="transfer for keras.applications architectures, "
                         "default otherwise")
    lr: float = option(FROM_RECIPE, "peak learning rate")
    patience: int = option(FROM_RECIPE, "stop after this many epochs without a lower validation loss")
    seed: int = option(0, f"random seed for weights, shuffling and augmentation (0..{MAX_SEED})")
    arch: str = option(DEFAULT_ARCH, "model architecture: cnn5 (the default) is the card's shape with five conv/pool "
                       "stages; cnn is the card's own network", choices=tuple(ARCHITECTURES))
    augment: str = option(FROM_RECIPE, "training-only augmentation: none, default, or a spec from "
                          "flip,rotation=R,zoom=Z,shear=S,shift=T,crop=C,colour=J,erase=P, e.g. flip,crop=0.2")
    mix: str = option("none", "mix training batches: mixup=ALPHA (blend image pairs and their labels) or "
                      "cutmix=ALPHA (paste a box of another image), mixing weight ~ Beta(ALPHA, ALPHA); add ,p=P to "
                      "mix a batch with probability P; none: no mixing")
    ema: float = option(0.0, "keep an exponential moving average of the weights (this decay per step, e.g. 0.999) "
                        "and validate, checkpoint and save the average as model.keras; 0: off")
    teacher: str = option("none", "distil from this finished run folder or --repeats folder (an ensemble): the loss "
                          "blends the labels' cross-entropy with the teacher's softened probabilities on the same "
                          "augmented batches; none: no teacher")
    distill_weight: float = option(0.5, "with --teacher: the teacher term's share A of the loss, in (0, 1]")
    distill_temperature: float = option(2.0, "with --teacher: the softening temperature T of both models' "
                                        "probabilities (> 0; the term is scaled by T^2)")
    whiten: bool = option(FROM_RECIPE, "start the first convolution as a patch-whitening filter bank of the "
                          "training images and keep it frozen (airbench's first layer; from-scratch architectures "
                          "started from scratch: off with --init or --data)", action=argparse.BooleanOptionalAction,
                          default_text="on with --recipe default, off with the others")
    dirac: bool = option(False, "start every convolution after the first with as many identity filters as it has "
                         "input channels (airbench's dirac init; from-scratch architectures)")
    lookahead: str = option("none", "Lookahead: every K steps the slow weights move ALPHA of the way to the fast "
                            "ones, which restart from them (K:ALPHA, e.g. 5:0.5); none: off", metavar="K:ALPHA")
    bias_lr: float = option(1.0, "the BatchNormalization biases learn this many times faster than the other "
                            "weights (airbench: 64); 1: the same rate", metavar="F")
    class_weight: str = option("none", "balanced weighs each class's loss by n/(classes*n_class)",
                               choices=("none", "balanced"))
    calibrate: str = option("temperature", "after training, fit temperature scaling on the val split "
                            "(calibration.json) so the reported and served probabilities are calibrated; none: raw "
                            "softmax", choices=("temperature", "none"))
    also_score: str = option("none", "after the test split, also score every row of these labels CSVs (comma-"
                             "separated), e.g. photos from outside the dataset: reports in RUN/eval-<name>-all/, "
                             "figures in metrics.json's also_scored and in --repeats' and sweep-cnn's tables; none: "
                             "off", metavar="CSV[,CSV]")
    precision: str = option("auto", "auto picks mixed_bfloat16 where the CPU/GPU supports it, float32 otherwise",
                            choices=PRECISIONS)
    dropout: float = option(FROM_RECIPE, "dropout rate before the classifier, in [0, 1) (0 = none)")
    optimizer: str = option(FROM_RECIPE, "optimizer", choices=("adam", "adamw"))
    weight_decay: float = option(FROM_RECIPE, "AdamW's decoupled weight decay (0 = none)")
    label_smoothing: float = option(FROM_RECIPE, "label smoothing of the cross-entropy, in [0, 1)")
    schedule: str = option(FROM_RECIPE, "learning-rate schedule: cosine (decays to 0 over --epochs) or none",
                           choices=("cosine", "none"))
    warmup_epochs: int = option(FROM_RECIPE, "epochs of linear warm-up from 0 to --lr")
    batch_norm: bool = option(False, "batch normalisation after each convolution")
    skip_missing: bool = option(False, "drop rows whose image file is missing instead of refusing")
    tensorboard: bool = option(False, "write TensorBoard logs into RUN/tensorboard: per-epoch scalars with the "
                               "learning rate, the graph, and the validation confusion matrix as an image")
    cache: str = option("none", "cache decoded, resized images: none, memory, or a file PATH prefix "
                        "(its folder must exist; files are keyed by the rows and size they hold)")
    weights: str = option(None, "the backbone's starting weights: imagenet (Keras's file, downloaded once into "
                          "~/.keras/models/), none (random), or a weights FILE for the backbone",
                          default_text="imagenet for keras.applications architectures (none with --init), none "
                          "otherwise")
    freeze_backbone: bool = option(FROM_RECIPE, "train the head only: every layer before the pooled features "
                                   "keeps its starting weights", action=argparse.BooleanOptionalAction)
    fine_tune: int = option(0, "after the frozen phase, unfreeze the top N backbone layers that hold weights "
                            "(BatchNormalization stays frozen, in inference mode) and train up to --epochs more "
                            "epochs at a tenth of --lr, in the same run folder (0 = no second phase)")
    init: str = option("none", "start from this run folder's model (same --arch; when its classes differ, only the "
                       "classifier starts afresh)")
    hidden: int = option(None, "units of the Dense layer before the classifier (0 = none)",
                         default_text="100 for keras.applications architectures, 512 for cnn5, 0 otherwise")
    feature_cache: str = option("on", "with a frozen backbone and no augmentation: on computes each image's "
                                "backbone features once and trains the head on them (in memory, or in files at "
                                "the --cache PATH prefix); off runs the whole model every epoch",
                                choices=("on", "off"))
    hierarchy: str = option(FLAT, "train a coarse model of parent classes, then one model per parent of its labels, "
                            "and predict by cascade: category_type (the labels CSV's column), or a CSV with columns "
                            "label,parent; none: one flat model")
    data: str = option("none", "read the images from the TFRecord shards pack-shards wrote into this folder (its "
                       "rows.csv replaces --labels; --image-size must be the packed size); none: the image files")
    strategy: str = option("auto", "tf.distribute strategy: default (one device), mirrored (every GPU of this "
                           "machine), multiworker (the machines of TF_CONFIG; on the jax backend the processes of "
                           "KERAS_DISTRIBUTION_*); auto: mirrored with 2+ GPUs",
                           choices=STRATEGIES)

    def __post_init__(self):
        self.resolve_arch_defaults()
        require(self.recipe in RECIPES, "recipe", self.recipe, f"must be one of {', '.join(RECIPES)}")
        for name, value in RECIPES[self.recipe].items():
            if getattr(self, name) is FROM_RECIPE:
                if name == "warmup_epochs":  # a short run keeps at least one epoch after the warm-up
                    value = min(value, max(self.epochs - 1, 0))
                object.__setattr__(self, name, from_recipe(self, name, value))  # frozen: fill in once, at construction
        if self.patience is None:
            object.__setattr__(self, "patience", max(5, self.epochs // 3))
        if self.data != "none":  # the shards' own labels CSV: the rows that were packed
            object.__setattr__(self, "labels", str(rows_csv(self.data)))
        self.check()

    def resolve_arch_defaults(self):
        """Fill in what depends on --arch: the recipe, the image size and the backbone's weights."""
        require(self.arch in ARCHITECTURES, "arch", self.arch, f"must be one of {', '.join(ARCHITECTURES)}")
        pretrained = self.arch in PRETRAINED
        defaults = dict(recipe="transfer" if pretrained else "default", image_size=DEFAULT_IMAGE_SIZE[self.arch],
                        weights="imagenet" if pretrained and self.init == "none" else "none")
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)  # frozen: fill in once, at construction

    def check(self):
        """Refuse impossible values with a one-line UsageError naming the option (before any work starts)."""
        for name in ("epochs", "batch_size", "patience"):
            require(getattr(self, name) >= 1, name, getattr(self, name), "must be 1 or more")
        low = MIN_IMAGE_SIZE[self.arch]
        require(low <= self.image_size <= MAX_IMAGE_SIZE, "image_size", self.image_size,
                 f"must be between {low} (the smallest input --arch {self.arch} can take) and {MAX_IMAGE_SIZE}"
                 + ("; for smaller images use --arch cnn (22 px and up)" if self.image_size < low else ""))
        require(math.isfinite(self.lr) and self.lr > 0, "lr", self.lr, "must be a finite number > 0")
        require(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"must be in 0..{MAX_SEED}")
        require(0 <= self.dropout < 1, "dropout", self.dropout, "must be in [0, 1)")
        require(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "must be in [0, 1)")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "must be 0 or more")
        require(0 <= self.warmup_epochs < self.epochs, "warmup_epochs", self.warmup_epochs,
                 f"must be in 0..{self.epochs - 1} (fewer than --epochs)")
        self.check_transfer()
        try:
            parse_mix(self.mix)
        except ValueError as error:
            require(False, "mix", self.mix, str(error))
        check_tricks(self)
        require(self.data == "none" or self.hierarchy == FLAT, "data", self.data,
                 "a hierarchical run trains its sub-models from the image files; drop --data or --hierarchy")
        for f in fields(self):
            choices = f.metadata.get("choices")
            require(not choices or getattr(self, f.name) in choices, f.name, getattr(self, f.name),
                     f"must be one of {', '.join(choices or ())}")

    def check_paths(self):
        """The checks that read the disk, made where a run starts rather than when options are built, so that a
        recorded config rebuilds after its teacher, --init run or weights file has moved: the files and folders
        the options name exist and fit (--weights, --init, --teacher, --cache's folder, --hierarchy, --data)."""
        from cnn.runfolder import run_finished
        from cnn.runs.ensemble import is_ensemble

        require(self.weights in ("imagenet", "none") or os.path.isfile(self.weights), "weights", self.weights,
                 "must be imagenet, none, or an existing weights file")
        require(self.init == "none" or os.path.isfile(os.path.join(self.init, RUN_MODEL_FILE)), "init", self.init,
                 f"is not a finished train-cnn run folder (no {RUN_MODEL_FILE} in it)")
        require(self.teacher == "none" or run_finished(self.teacher) or is_ensemble(self.teacher), "teacher",
                 self.teacher, "is not a finished train-cnn run folder or --repeats folder")
        folder = os.path.dirname(os.path.abspath(self.cache))
        require(self.cache in ("none", "memory") or os.path.isdir(folder), "cache", self.cache,
                 f"folder {folder} does not exist; create it or use --cache memory")
        problem = option_problem(self.hierarchy)
        require(problem is None, "hierarchy", self.hierarchy, problem)
        if self.data != "none" and packed_size(self.data) != self.image_size:
            require(False, "image_size", self.image_size, f"--data {self.data} was packed at "
                     f"{packed_size(self.data)} px; pass --image-size {packed_size(self.data)} or pack again")
        return self

    def check_transfer(self):
        """--weights, --init, --fine-tune and --hidden: values that exist and fit the architecture."""
        pretrained = self.arch in PRETRAINED
        require(pretrained or self.weights == "none", "weights", self.weights, f"--arch {self.arch} is trained "
                 f"from scratch; start it from another run with --init RUN")
        require(self.init == "none" or self.weights == "none", "weights", self.weights,
                 "--init RUN supplies every weight; drop --weights")
        require(not (self.batch_norm and pretrained), "batch_norm", self.batch_norm,
                 f"--arch {self.arch} has its own normalisation")
        require(self.hidden is None or self.hidden >= 0, "hidden", self.hidden, "must be 0 or more")
        require(self.fine_tune >= 0, "fine_tune", self.fine_tune, "must be 0 or more")
        require(self.fine_tune == 0 or self.freeze_backbone, "fine_tune", self.fine_tune,
                 "follows a frozen first phase: add --freeze-backbone (the transfer recipe's default)")
        require(self.fine_tune == 0 or not self.tensorflow_loop, "fine_tune", self.fine_tune,
                 UNSUPPORTED + "; fine-tune in a second run with --init")

    @property
    def tensorflow_loop(self):
        """True when the run trains in cnn.training.distribute.multiworker's own loop (--strategy multiworker on TensorFlow),
        which has none of model.fit's extras; on the jax backend multiworker is model.fit."""
        return self.strategy == "multiworker" and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"

    def to_dict(self):
        """The options as a plain dict (config.json's "options")."""
        return asdict(self)


def differences(recorded, options, allowed=()):
    """`--flag value (recorded: old)` for each option in `options` whose value is not the recorded one; an
    option the record lacks was added since, so the run had its default (when it has a fixed one)."""
    added = {f.name: f.default for f in fields(TrainOptions) if f.default is not FROM_RECIPE}
    recorded = {**added, **recorded}
    return [f"{flag(k)} {v} (recorded: {recorded.get(k)})" for k, v in options.items()
            if k not in allowed and recorded.get(k) != v]


def add_to_parser(parser):
    """Add one argument per TrainOptions field, with no default: the namespace holds only what was typed."""
    for f in fields(TrainOptions):
        meta = dict(f.metadata)
        text = meta.pop("help")
        default = meta.pop("default_text", "from --recipe" if f.default is FROM_RECIPE else f.default)
        if f.type is bool:
            action = meta.pop("action", "store_true")
            parser.add_argument(flag(f.name), action=action, default=argparse.SUPPRESS,
                                help=text if action == "store_true" else f"{text} (default: {default})")
        else:
            parser.add_argument(flag(f.name), type=f.type, default=argparse.SUPPRESS,
                                help=f"{text} (default: {default})", **meta)


def synopsis(width=112):
    """train-cnn's usage block for docs/train-cnn.md, made from TrainOptions (a test keeps the page equal to it):
    each option with its choices, metavar or default."""
    items = [f"[{flag(f.name)}{_synopsis_value(f)}]" for f in fields(TrainOptions)]
    items += ["[--out runs/NAME]", "[--resume]", "[--repeats N]"]
    lines, line = [], "train-cnn"
    for item in items:
        if len(line) + 1 + len(item) > width:
            lines.append(line)
            line = " " * len("train-cnn")
        line += " " + item
    return "\n".join(lines + [line])


def _synopsis_value(f):
    """' a|b', ' METAVAR' or ' DEFAULT' after an option's flag in the synopsis ('' for a switch)."""
    if f.type is bool:
        return ""
    if "choices" in f.metadata:
        return " " + "|".join(map(str, f.metadata["choices"]))
    if "metavar" in f.metadata:
        return " " + f.metadata["metavar"]
    return " " + (f.name.upper() if f.default in (FROM_RECIPE, "none") else str(f.default))


def typed_options(namespace):
    """The TrainOptions values present in a parsed namespace (what the user typed), as a dict."""
    names = {f.name for f in fields(TrainOptions)}
    return {k: v for k, v in vars(namespace).items() if k in names}
