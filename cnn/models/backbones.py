"""Pretrained backbones from keras.applications with the tutorials' head, for `train-cnn --arch xception` etc.

The model is one flat graph: image (0-255) -> the backbone's own preprocessing, as Keras layers -> the
backbone without its top -> GlobalAveragePooling -> Dense(hidden, relu) -> Dropout -> softmax. Keeping the
preprocessing inside makes evaluate-cnn, predict-cnn, show-batch and export-model work unchanged, and a flat
graph (the backbone built on our tensor, not nested as one layer) keeps every backbone layer visible to
Grad-CAM, analyze-model and fine-tuning.
"""
import contextlib
import os
import re
import sys
from dataclasses import dataclass

from cnn.models.heads import add_head
from common.errors import UsageError

HIDDEN = 100  # the tutorials' Dense(100) between the pooled features and the classifier
PREPROCESS = "preprocess"  # the name of the layer that does the backbone's preprocess_input
DROPOUT = 0.5


@dataclass(frozen=True)
class Backbone:
    """A keras.applications architecture: its function, usual input size, smallest input, preprocessing mode."""

    app: str  # the keras.applications function
    size: int  # the input side it was trained at (the default --image-size)
    min_size: int  # the smallest input side it accepts
    preprocess: str  # what its preprocess_input does: tf, torch, caffe, or none (done inside the backbone)


# `train-cnn --arch NAME`: keras.applications backbones. Preprocessing modes as keras.applications.imagenet_utils
# names them (tests check each against the module's own preprocess_input).
PRETRAINED = {
    "xception": Backbone("Xception", 299, 71, "tf"),
    "inceptionv3": Backbone("InceptionV3", 299, 75, "tf"),
    "resnet50": Backbone("ResNet50", 224, 32, "caffe"),
    "densenet121": Backbone("DenseNet121", 224, 32, "torch"),
    "mobilenetv2": Backbone("MobileNetV2", 224, 32, "tf"),
    "mobilenetv3small": Backbone("MobileNetV3Small", 224, 32, "none"),
    "efficientnetb0": Backbone("EfficientNetB0", 224, 32, "none"),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torch mode: RGB mean and standard deviation of ImageNet in 0..1
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # caffe mode: BGR means in 0..255


def preprocessing(mode, inputs):
    """The backbone's preprocess_input as Keras layers on `inputs` (0-255 RGB): serialisable, no Lambda.

    tf: x / 127.5 - 1. torch: (x / 255 - mean) / std per channel, one Rescaling with per-channel factors.
    caffe: RGB -> BGR and the BGR means subtracted: a fixed, frozen 1x1 convolution (a permutation matrix
    and a bias), exact in float32. none: the backbone rescales by itself.
    """
    import numpy as np
    from keras import layers

    if mode == "tf":
        return layers.Rescaling(1 / 127.5, offset=-1.0, name=PREPROCESS)(inputs)
    if mode == "torch":
        return layers.Rescaling([1 / (255 * s) for s in IMAGENET_STD],
                                offset=[-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)], name=PREPROCESS)(inputs)
    if mode == "caffe":
        conv = layers.Conv2D(3, 1, name=PREPROCESS, trainable=False, dtype="float32")  # exact under mixed precision
        x = conv(inputs)
        conv.set_weights([np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3), -np.array(CAFFE_MEAN_BGR, "float32")])
        return x
    return inputs


def build_pretrained(arch, num_classes, input_shape=(224, 224, 3), weights=None, hidden=HIDDEN, dropout=DROPOUT):
    """The `arch` backbone (weights None, "imagenet" or a file) with the tutorials' head, as one flat model.

    Keras's weight loaders match the layers that hold weights in order, so weights go straight into the
    flat model when the preprocessing holds none, and through a standalone backbone otherwise (caffe).
    """
    import keras

    spec = PRETRAINED[arch]
    if min(input_shape[:2]) < spec.min_size:  # built on our tensor, some backbones skip their own size check
        raise ValueError(f"{arch} needs inputs of at least {spec.min_size} x {spec.min_size} pixels, not {input_shape}")
    app = getattr(keras.applications, spec.app)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = preprocessing(spec.preprocess, inputs)
    direct = spec.preprocess != "caffe"
    with quiet_loading():
        base = app(include_top=False, weights=weights if direct else None, input_tensor=x)
        if weights is not None and not direct:
            standalone = app(include_top=False, weights=weights, input_shape=tuple(input_shape))
            copy_weights(standalone.layers, base.layers, skip=(PREPROCESS,))
    outputs = add_head(base.outputs[0], num_classes, "global", hidden, dropout, feature_dropout=False)
    return keras.Model(inputs, outputs, name=arch)


def weighted_layers(layers, skip=()):
    """The layers that hold weights, in order, leaving out those named in `skip`."""
    return [layer for layer in layers if layer.weights and layer.name not in skip]


def copy_weights(source, target, skip=(), keep=()):
    """Copy weights layer by layer between two lists of layers, matched in order among those holding weights.

    Matching by position, not name, survives Keras's automatic names (rescaling_3). `skip` names layers
    left out of the matching on both sides; target layers named in `keep` are matched but keep their own
    weights. Any other difference in type or shape is a ValueError naming the layer. Returns the count copied.
    """
    sources, targets = weighted_layers(source, skip), weighted_layers(target, skip)
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} layers with weights there, {len(targets)} here")
    copied = 0
    for src, dst in zip(sources, targets):
        if dst.name in keep:
            continue
        if type(src) is not type(dst) or [w.shape for w in src.weights] != [w.shape for w in dst.weights]:
            raise ValueError(f"layer {dst.name!r} ({type(dst).__name__} {[tuple(w.shape) for w in dst.weights]}) "
                             f"does not match {src.name!r} ({type(src).__name__} {[tuple(w.shape) for w in src.weights]})")
        dst.set_weights(src.get_weights())
        copied += 1
    return copied


@contextlib.contextmanager
def quiet_loading():
    """Keras's download progress to stderr (stdout is the command's), and its spurious warnings about nested
    containers when a .weights.h5 file loads into a model with layers in front of the backbone silenced."""
    import warnings

    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping nested container")
        yield


def keras_cache():
    """The folder Keras keeps downloaded weights in ($KERAS_HOME/models, by default ~/.keras/models)."""
    return os.path.join(os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "models")


def check_weights(arch, size, weights):
    """Load `weights` ("imagenet" or a file) into a standalone `arch` backbone once, before the run folder is
    made: a missing download or an unloadable file is a one-line UsageError and nothing is written."""
    import keras

    app = getattr(keras.applications, PRETRAINED[arch].app)
    try:
        with quiet_loading():
            app(include_top=False, weights=weights, input_shape=(size, size, 3))
    except Exception as error:  # Keras raises Exception for a failed download, ValueError/OSError for a bad file
        raise weights_error(arch, weights, error) from None


def weights_error(arch, weights, error):
    """The UsageError for weights that did not load; for ImageNet it names the file Keras wants and where."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    url = re.search(r"https?://\S+?\.h5", text)
    if weights == "imagenet" and url:
        name = url.group(0).rsplit("/", 1)[1]
        return UsageError(f"--weights imagenet: {arch}'s ImageNet weights {name} are not in {keras_cache()}/ and "
                          f"could not be downloaded (no internet?); download {url.group(0)} elsewhere and copy it "
                          f"into {keras_cache()}/, or use --weights none or --weights FILE")
    return UsageError(f"--weights {weights}: not loadable into {arch}'s backbone ({text[:200]})")
