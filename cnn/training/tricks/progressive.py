"""--progressive: train the first epochs on smaller images, then the rest at --image-size (progressive resizing).

An epoch at half the side costs about a quarter, so the same wall time buys more steps. The model keeps the
card's layout: a parameter-free resize of the last feature map to its full-size grid before Flatten (the
identity at --image-size) lets the same weights take any size, so the Dense layer always sees the full-size
grid. The trainer fits a twin of the model on a flexible input (same layers, same weights), one Keras fit per
stage, while model.keras stays the model at --image-size; validation is always at --image-size, so every
epoch's validation loss is comparable and early stopping and the best checkpoint span the stages.
"""
from cnn.models.architectures import MIN_IMAGE_SIZE, PRETRAINED
from cnn.training.recipes import RECIPES
from cnn.training.tricks.base import Trick

NONE = "none"


def parse_progressive(spec):
    """`SIZE[,SIZE...]:FRACTION` -> (sizes, fraction): the sizes share the first FRACTION of the epochs in equal
    parts, in order; `none` -> ((), 0.0). A ValueError says what is wrong."""
    if spec == NONE:
        return (), 0.0
    sizes, sep, fraction = spec.partition(":")
    try:
        sizes = tuple(int(s) for s in sizes.split(","))
        fraction = float(fraction) if sep else 0.5
    except ValueError:
        raise ValueError("expected SIZE[,SIZE...]:FRACTION, e.g. 128:0.5 or 128,192:0.6") from None
    if not 0 < fraction < 1:
        raise ValueError(f"the fraction of epochs at the smaller sizes must be in (0, 1), not {fraction:g}")
    if list(sizes) != sorted(set(sizes)):
        raise ValueError("the sizes must increase")
    return sizes, fraction


def stages(options):
    """The run's (first epoch, end epoch, image size) stages: the smaller sizes, then --image-size to the end.
    A stage too short to hold an epoch is dropped."""
    sizes, fraction = parse_progressive(options.progressive)
    bounds = [round(options.epochs * fraction * i / len(sizes)) for i in range(len(sizes) + 1)] if sizes else [0]
    edges = list(zip(bounds, bounds[1:] + [options.epochs], (*sizes, options.image_size)))
    return [(start, stop, size) for start, stop, size in edges if stop > start]


def problem(options, min_size):
    """The problem with --progressive for these options, or None."""
    try:
        sizes, _ = parse_progressive(options.progressive)
    except ValueError as error:
        return str(error)
    if sizes and not (min_size <= sizes[0] and sizes[-1] < options.image_size):
        return f"the sizes must be between {min_size} (the smallest input --arch {options.arch} takes) and " \
               f"--image-size {options.image_size} (exclusive)"
    dropped = sorted(set(sizes) - {size for _, _, size in stages(options)})
    if dropped:
        return f"--epochs {options.epochs} leaves no epoch at {', '.join(map(str, dropped))} px; raise the fraction " \
               f"or --epochs"
    return None


def flexible_twin(model):
    """The same layers (and so the same weights) on an input of any height and width: what the stages fit.
    The from-scratch architectures are one chain of layers, which is all this rebuilds."""
    import keras

    x = inputs = keras.Input(shape=(None, None, model.inputs[0].shape[-1]), name="image")
    for layer in model.layers[1:]:
        x = layer(x)
    return keras.Model(inputs, x, name=model.name)


class Progressive(Trick):
    """--progressive: sizes the architecture takes, below --image-size; a from-scratch model read from files. The
    fitted model is the twin that takes any size (cnn.training.engine.fit_stages fits it stage by stage)."""

    option, off = "progressive", NONE

    def check(self, options):
        if not self.on(options):
            return
        found = problem(options, MIN_IMAGE_SIZE[options.arch])
        if found and options.progressive == RECIPES[options.recipe]["progressive"]:
            found += f" (--recipe {options.recipe} sets it: pass --progressive none, or smaller sizes)"
        self.require(found is None, options, found)
        self.require(options.arch not in PRETRAINED, options, f"takes a from-scratch --arch, not {options.arch}")
        self.require(options.data == "none", options, "reads the image files at each size; drop --data")

    def wrap(self, fitted, options, classes):
        return flexible_twin(fitted)
