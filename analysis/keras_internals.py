"""The private Keras 3 internals the graph walk, the layer rules and the measurements need, in one place.

Keras 3 has no public API for a functional model's call graph, for replaying one recorded layer call, for
the op classes that `x + y` on symbolic tensors creates or for the layers keras.applications defines for
itself, so these read private attributes and modules. producer, call_of and numpy_ops were checked on
Keras 3.0 to 3.15, call_inputs, call_with and application_layers on 3.15 (TensorFlow backend);
requirements.txt bounds keras below 4 so a major change cannot arrive unnoticed, and the analysis tests
exercise every accessor.
"""


def producer(tensor):
    """(layer, node index, tensor index) of the call that produced a symbolic Keras tensor."""
    return tensor._keras_history


def call_of(layer, node_index):
    """The layer's `node_index`-th call (a Node with .arguments.keras_tensors and .outputs)."""
    return layer._inbound_nodes[node_index]


def numpy_ops():
    """Keras's numpy-op module: the classes of `x + y`, `x * 0.5`... nodes in a functional graph."""
    from keras.src.ops import numpy

    return numpy


def application_layers():
    """The layer classes keras.applications defines for itself: (ConvNeXt's LayerScale, x * gamma per channel;
    InceptionResNetV2's CustomScaleLayer, inputs[0] + inputs[1] * scale)."""
    from keras.src.applications.convnext import LayerScale
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    return LayerScale, CustomScaleLayer


def call_inputs(tensor):
    """The symbolic tensors passed to the call that produced `tensor`."""
    layer, node_index, _ = producer(tensor)
    return list(call_of(layer, node_index).arguments.keras_tensors)


def call_with(tensor, values):
    """Call again the layer that produced `tensor`, with its inputs replaced by `values` (keyed by id of the
    symbolic tensor), keeping its other arguments (constants of `x * 0.5`, keyword options) as recorded;
    returns the output that stands for `tensor` (one of several for a multi-output layer)."""
    layer, node_index, tensor_index = producer(tensor)
    args, kwargs = call_of(layer, node_index).arguments.fill_in(values)
    outputs = layer(*args, **kwargs)
    return outputs[tensor_index] if isinstance(outputs, (list, tuple)) else outputs
