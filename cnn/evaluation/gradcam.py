"""Class activation maps: where in an image a Keras CNN found the evidence for a class.

Both methods differentiate a class's score with respect to a layer's feature map A (h x w x K channels):
Grad-CAM (Selvaraju et al. 2017) weights each channel by its spatially averaged gradient and sums,
ReLU(sum_k mean_ij(d score / d A_ijk) A_k); HiResCAM (Draelos & Carin 2020) multiplies gradient and
feature position by position, ReLU(sum_k d score / d A_k * A_k). The map is upsampled bilinearly to the
input's size and divided by its maximum, so it lies in [0, 1] (all zeros when nothing speaks for the class).
The score is the class's pre-softmax logit when the model ends in a Dense softmax layer (every model
cnn.models.architectures builds), computed from that layer's input, kernel and bias; for any other model it is the log of
the output probability, whose gradient also subtracts the other classes'. The models take raw 0-255 pixels
(rescaling is inside), so images go in as the loader yields them.
"""
from common.atomic import atomic_path
from common.errors import UsageError
from common.tfenv import quiet_tensorflow

BATCH = 32  # images per gradient pass
ALPHA = 0.45  # the heatmap's share of each pixel in an overlay
COLORMAP = "jet"  # blue (no evidence) to red (most evidence), as in the paper's figures
PANEL_INCHES = 2.4  # each overlay's square in a saved figure
DPI = 100


def cam_layers(model):
    """Names of the layers a map can explain: every layer after the input whose output is a 4-D feature map."""
    import keras

    return [layer.name for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == 4]


def cam_layer(model, name=None):
    """The layer to explain: `name`, or by default the last one with a spatial output (the map the
    Flatten or global pooling head reads: `poolN` in cnn.models.architectures). Anything else is a UsageError."""
    usable = cam_layers(model)
    if not usable:
        raise UsageError(f"model {model.name} has no layer with a spatial (4-D) output; class activation maps need a CNN")
    if name is None:
        return model.get_layer(usable[-1])
    if name not in usable:
        what = "has no spatial (4-D) output" if name in [layer.name for layer in model.layers] else "does not exist"
        raise UsageError(f"--cam-layer {name} {what} in model {model.name}; choose one of: {', '.join(usable)}")
    return model.get_layer(name)


def _split(model, layer):
    """(image -> feature map, feature map -> per-class scores to differentiate): two models sharing the weights.

    With a Dense softmax head the scores are its logits (its input through its kernel and bias); otherwise the
    log of the probabilities.
    """
    import keras
    from keras import ops

    features = keras.Model(model.input, layer.output)
    head = model.layers[-1]
    if isinstance(head, keras.layers.Dense) and head.activation is keras.activations.softmax:
        rest = keras.Model(layer.output, head.input)
        bias = 0 if head.bias is None else head.bias
        return features, lambda f: ops.matmul(ops.cast(rest(f, training=False), head.kernel.dtype), head.kernel) + bias
    rest = keras.Model(layer.output, model.outputs[0])
    return features, lambda f: ops.log(ops.maximum(ops.cast(rest(f, training=False), "float32"), 1e-12))


def feature_gradients(scores, features, class_indices):
    """d score[i, class_indices[i]] / d features[i] for each image, by the running backend's own autodiff (the
    images are independent, so the gradient of the sum is each image's own)."""
    import keras
    import numpy as np

    def chosen(f):
        return keras.ops.sum(keras.ops.take_along_axis(scores(f), keras.ops.convert_to_tensor(class_indices[:, None]),
                                                       axis=1))

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(chosen)(features))
    if backend == "tensorflow":
        tf = quiet_tensorflow()
        f = tf.constant(features)
        with tf.GradientTape() as tape:
            tape.watch(f)
            total = chosen(f)
        return tape.gradient(total, f).numpy()
    raise UsageError(f"heatmaps are drawn on the tensorflow and jax backends, not {backend}")


def channel_weighted(grads, features):
    """Grad-CAM (Selvaraju et al. 2017): sum_k alpha_k A_k, alpha_k the spatial mean of d score / d A_k."""
    return (grads.mean(axis=(1, 2), keepdims=True) * features).sum(axis=-1)


def element_weighted(grads, features):
    """HiResCAM (Draelos & Carin 2020): sum_k (d score / d A_k) * A_k, position by position.

    With a linear head it is each position's exact share of the logit; behind global average pooling the
    gradient is the same at every position, so after normalising it equals Grad-CAM.
    """
    return (grads * features).sum(axis=-1)


# --cam-method NAME -> how a map is made from the gradients and the feature map (each (n, h, w, K) float32)
METHODS = {"hirescam": element_weighted, "gradcam": channel_weighted}
# Behind the card's Flatten head Grad-CAM's averaged weights come out negative for most images (an empty
# map for 56 of 61 test images of a sample run), while HiResCAM shows the evidence; behind global pooling
# the two agree. So HiResCAM is the default.
DEFAULT_METHOD = "hirescam"


def heatmaps(model, images, class_indices, layer=None, method=DEFAULT_METHOD):
    """Heatmaps, float32 (n, H, W) in [0, 1], of `class_indices[i]` for `images[i]`, by `method` (METHODS).

    `images`: (n, H, W, 3) raw 0-255 pixels at the model's input size; `layer`: a layer name (default:
    the last spatial layer, see cam_layer).
    """
    import keras
    import numpy as np

    if method not in METHODS:
        raise UsageError(f"--cam-method {method} is unknown; choose one of: {', '.join(METHODS)}")
    to_features, scores = _split(model, cam_layer(model, layer))
    images, class_indices = np.asarray(images, np.float32), np.asarray(class_indices)
    maps = []
    for start in range(0, len(images), BATCH):
        features = np.asarray(to_features(images[start:start + BATCH], training=False), np.float32)
        grads = feature_gradients(scores, features, class_indices[start:start + BATCH]).astype(np.float32)
        cam = np.maximum(METHODS[method](grads, features), 0)
        maps.append(np.asarray(keras.ops.image.resize(cam[..., None], images.shape[1:3], interpolation="bilinear"))
                    [..., 0])
    heat = np.concatenate(maps)
    peak = heat.max(axis=(1, 2), keepdims=True)
    return np.divide(heat, peak, out=np.zeros_like(heat), where=peak > 0)


def overlay(picture, heatmap, alpha=ALPHA, colormap=COLORMAP):
    """The picture (PIL image or H x W x 3 array of 0-255) with the heatmap, stretched to its size, blended
    on top in `colormap`: a uint8 H x W x 3 array. Stretching matches the loader, which resizes without
    keeping the aspect ratio, so each heatmap pixel lands on the part of the picture the model saw there."""
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image

    pixels = np.asarray(picture, dtype=np.float32)[..., :3]
    height, width = pixels.shape[:2]
    heat = np.asarray(Image.fromarray(np.asarray(heatmap, np.float32)).resize((width, height), Image.BILINEAR))
    colours = colormaps[colormap](np.clip(heat, 0, 1))[..., :3] * 255
    return np.round((1 - alpha) * pixels + alpha * colours).astype(np.uint8)


def save_panels(panels, out_png):
    """Save (picture, title, colour) panels side by side as one titled PNG, atomically."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(PANEL_INCHES * len(panels), PANEL_INCHES + 0.4))
    for ax, (picture, title, colour) in zip(fig.subplots(1, len(panels), squeeze=False).flat, panels):
        ax.imshow(picture)
        ax.set_title(title, fontsize=9, color=colour, parse_math=False)  # class names as text
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
