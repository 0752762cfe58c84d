"""Model builders: the card's conv/pool/Flatten CNN and a registry that `train-cnn --arch` reads (with the
keras.applications backbones of cnn.models.backbones)."""
import functools

from cnn.models.backbones import PRETRAINED, build_pretrained
from cnn.models.heads import add_head

CARD_FILTERS = (32, 64, 128)  # the card's three conv/pool stages
DEEP_FILTERS = (32, 64, 128, 256)  # cnn-deep's four
FIVE_FILTERS = (32, 64, 128, 256, 256)  # cnn5's five: at 256 px the Flatten sees 6x6x256 units of a 94-px field
FIVE_HIDDEN = 512  # cnn5's small Dense layer before the classifier
KERNEL = 3


def build_cnn(num_classes, input_shape=(256, 256, 3), filters=CARD_FILTERS, kernel_size=KERNEL,
              dropout=0.0, batch_norm=False, head="flatten", hidden=0, grid=False, name="clothing_cnn"):
    """The card's network: [conv(k, 'valid') -> ReLU -> maxpool(2)] per filter count -> head -> softmax.

    Defaults give conv3x3(32)-pool-conv3x3(64)-pool-conv3x3(128)-pool-Flatten-Dense: 5,392,494
    parameters for 46 classes at 256x256. Pixels are rescaled to [0, 1] inside the model, so it
    takes raw 0-255 images. `head="global"` swaps Flatten for global average pooling (far fewer
    parameters); `batch_norm` adds BatchNormalization after each convolution; `dropout` is applied
    before the classifier; `grid` resizes the last feature map to its full-size grid before Flatten (no
    parameters; --progressive). The softmax output is float32 even under a mixed-precision policy.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for i, n in enumerate(filters, start=1):
        x = layers.Conv2D(n, kernel_size, padding="valid", use_bias=not batch_norm,
                          activation=None if batch_norm else "relu", name=f"conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"bn{i}")(x)
            x = layers.Activation("relu", name=f"relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    outputs = add_head(x, num_classes, head, hidden, dropout, grid=grid)
    return keras.Model(inputs, outputs, name=name)


def build_deep_cnn(num_classes, input_shape=(256, 256, 3), **options):
    """A four-stage variant (32-64-128-256): same family, more depth, fewer dense weights."""
    options.setdefault("filters", DEEP_FILTERS)
    return build_cnn(num_classes, input_shape, name="clothing_cnn_deep", **options)


def build_cnn5(num_classes, input_shape=(256, 256, 3), **options):
    """The card's shape, seeing more before it flattens: five conv-ReLU-pool stages (BatchNormalization after each
    convolution with batch_norm=True, train-cnn --batch-norm), Flatten, Dense(512), softmax.

    At 256x256 the Flatten sees 6x6x256 features whose units each see 94x94 pixels (the card's: 30x30x128
    of 22x22), so the dense weights meet garment parts rather than patches; about 5.7M parameters.
    """
    options.setdefault("filters", FIVE_FILTERS)
    options.setdefault("hidden", FIVE_HIDDEN)
    return build_cnn(num_classes, input_shape, name="clothing_cnn5", **options)


# name -> builder(num_classes, input_shape, **options); `train-cnn --arch NAME` picks one.
ARCHITECTURES = {
    "cnn": build_cnn,
    "cnn-deep": build_deep_cnn,
    "cnn5": build_cnn5,
    **{name: functools.partial(build_pretrained, name) for name in PRETRAINED},
}
IMAGE_SIZE = 256  # the card's input side: the from-scratch architectures' default --image-size
# train-cnn's and analyze-model's architecture when none is named: the card's shape (conv/pool stages, Flatten,
# Dense, ~5.7M parameters at 256 px) that measured best with the default recipe (docs/results/recipes-over-seeds.md);
# `--arch cnn` is the card's own 5,392,494-parameter network.
DEFAULT_ARCH = "cnn5"


def min_image_size(stages, kernel_size=KERNEL):
    """The smallest square input that leaves 1 pixel after `stages` x [conv(k, 'valid') -> maxpool(2)].

    Working back from 1 pixel: a pool needs 2 pixels, a valid k x k convolution k - 1 more.
    """
    size = 1
    for _ in range(stages):
        size = 2 * size + kernel_size - 1
    return size


# --image-size below this fails to build (the card's network: 22).
MIN_IMAGE_SIZE = {"cnn": min_image_size(len(CARD_FILTERS)), "cnn-deep": min_image_size(len(DEEP_FILTERS)),
                  "cnn5": min_image_size(len(FIVE_FILTERS)), **{name: b.min_size for name, b in PRETRAINED.items()}}
# --image-size when none is given: the card's 256, a pretrained backbone's own training size.
DEFAULT_IMAGE_SIZE = {**{name: IMAGE_SIZE for name in MIN_IMAGE_SIZE}, **{name: b.size for name, b in PRETRAINED.items()}}


def build_model(arch, num_classes, input_shape=(256, 256, 3), **options):
    """Build a registered architecture by name; a clear ValueError lists the known names otherwise."""
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of: {', '.join(sorted(ARCHITECTURES))}") from None
    return builder(num_classes, tuple(input_shape), **options)
