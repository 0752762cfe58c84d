"""Measure receptive fields by gradients: which input pixels can change a layer's centre unit.

A probe copy of the model keeps every layer's geometry (kernels, strides, dilation, padding, cropping,
branches) with positive weights (1/fan-in, biases 0) in float64, so no path cancels or underflows: the
gradient of the centre unit w.r.t. the input is nonzero exactly on the pixels that unit depends on.
Max pooling becomes average pooling (a max passes gradient to one pixel of its window, an average to all,
same window) and pointwise layers (activations, normalisation, dropout) become identities.
"""
import numpy as np

from analysis.receptive import unit_bounds
from common.errors import UsageError
from common.tfenv import quiet_tensorflow


def measure_fields(nodes, fields):
    """Per node, the measured (first, last) input pixel per axis, or None where nothing is measured.

    Local layers: the centre unit (index n//2 per axis, all channels). Global layers: all units together.
    """
    tf = quiet_tensorflow()
    import keras

    if sum(1 for node in nodes if not node.inputs) != 1:
        raise UsageError("--empirical measures single-input models only")
    if fields[0].is_global:  # a vector input has no pixels to locate
        return [None] * len(nodes)
    probe, measured_nodes = _probe_model(nodes, fields, keras)
    _positive_weights(probe)
    image = tf.ones((1,) + tuple(nodes[0].output_shape), dtype="float64")
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(image)
        outputs = probe(image)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        targets = [_target(tf, out, fields[i]) for out, i in zip(outputs, measured_nodes)]
    measured = [None] * len(nodes)
    for i, target in zip(measured_nodes, targets):
        measured[i] = _support(tape.gradient(target, image).numpy()[0])
    return measured


def analytic_bounds(node, field):
    """What the analysis predicts `measure_fields` will find for this node (same unit, clipped to the image)."""
    if field.is_global:
        return field.coverage
    return unit_bounds(field, [n // 2 for n in node.output_shape[:-1]])


def _probe_model(nodes, fields, keras):
    """Rebuild the graph with probe layers; outputs: every node with a field to measure (spatial or global)."""
    tensors = {}
    measured = []
    for i, node in enumerate(nodes):
        if not node.inputs:
            tensors[node.name] = keras.Input(node.output_shape, dtype="float64")
            continue
        layer, takes_list = _probe_layer(node, keras)
        args = [tensors[name] for name in node.inputs]
        tensors[node.name] = layer(args if takes_list else args[0])
        if fields[i].size:
            measured.append(i)
    outputs = [tensors[nodes[i].name] for i in measured]
    return keras.Model(tensors[nodes[0].name], outputs), measured


def _probe_layer(node, keras):
    """(layer, takes a list): the geometry-preserving, positive, linear stand-in for one layer."""
    from keras import layers as L

    layer = node.layer
    swaps = {L.MaxPooling1D: L.AveragePooling1D, L.MaxPooling2D: L.AveragePooling2D,
             L.GlobalMaxPooling1D: L.GlobalAveragePooling1D, L.GlobalMaxPooling2D: L.GlobalAveragePooling2D}
    geometric = (L.Conv1D, L.Conv2D, L.DepthwiseConv1D, L.DepthwiseConv2D, L.SeparableConv1D, L.SeparableConv2D,
                 L.Conv1DTranspose, L.Conv2DTranspose, L.AveragePooling1D, L.AveragePooling2D,
                 L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.ZeroPadding1D, L.ZeroPadding2D,
                 L.Cropping1D, L.Cropping2D, L.Flatten, L.Reshape, L.Permute, L.Dense, L.Concatenate,
                 L.UpSampling1D, L.UpSampling2D)
    if len(node.inputs) > 1:  # Add, Multiply, Subtract, Maximum...: the union of the branches, never cancelling
        return (L.Concatenate if isinstance(layer, L.Concatenate) else L.Add)(dtype="float64"), True
    for original, stand_in in swaps.items():
        if isinstance(layer, original):
            return stand_in.from_config(_probe_config(layer, stand_in)), False
    if isinstance(layer, geometric):
        return type(layer).from_config(_probe_config(layer, type(layer))), False
    if tuple(node.input_shapes[0]) != tuple(node.output_shape):
        raise UsageError(f"--empirical cannot measure through layer {node.name!r} ({node.kind}): unknown geometry")
    return L.Identity(dtype="float64"), False


def _probe_config(layer, cls):
    """The layer's config for `cls`, in float64, without activation or name (names may repeat once flattened)."""
    import inspect

    config = {key: value for key, value in layer.get_config().items() if key != "name"}
    config["dtype"] = "float64"
    if "activation" in config:
        config["activation"] = "linear"
    accepted = inspect.signature(cls.__init__).parameters
    return {key: value for key, value in config.items() if key in accepted or key == "dtype"}


def _positive_weights(model):
    """Biases 0; every other weight 1/fan-in (positive, and sums stay near 1 however deep the model)."""
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "bias" in variable.name:
            variable.assign(np.zeros(shape))
        else:
            variable.assign(np.full(shape, 1.0 / max(int(np.prod(shape[:-1])), 1)))


def _target(tf, output, field):
    """The quantity to differentiate: the centre unit summed over channels, or all units for a global layer."""
    if field.is_global:
        return tf.reduce_sum(output)
    centre = tuple(n // 2 for n in output.shape[1:-1])
    return tf.reduce_sum(output[(0,) + centre])


def _support(gradient):
    """(first, last) index per spatial axis where the gradient is nonzero on any channel; None if nowhere."""
    nonzero = np.any(gradient != 0, axis=-1)
    if not nonzero.any():
        return None
    bounds = []
    for axis in range(nonzero.ndim):
        hits = np.flatnonzero(np.any(nonzero, axis=tuple(a for a in range(nonzero.ndim) if a != axis)))
        bounds.append((int(hits[0]), int(hits[-1])))
    return tuple(bounds)
