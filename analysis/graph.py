"""Walk a Keras model into a flat, topologically ordered list of layer calls with their shapes.

Nested models used as layers are opened up, so every count and field is per real layer; a node's
name is its path ("block/conv") and its inputs name the nodes that feed it.
"""
from dataclasses import dataclass, field

from analysis.keras_internals import call_inputs, call_of, call_with, producer
from common.errors import UsageError


@dataclass
class LayerNode:
    """One call of one layer: its inputs (node names), shapes without the batch axis, the layer, and its symbolic
    output tensor (in the graph of the model it belongs to: nested models have their own)."""

    name: str
    layer: object
    inputs: list = field(default_factory=list)
    input_shapes: list = field(default_factory=list)
    output_shape: tuple = ()
    first_call: bool = True
    tensor: object = None

    @property
    def kind(self):
        """The layer's class name, e.g. 'Conv2D'."""
        return type(self.layer).__name__


def walk(model):
    """Return the model's layer calls in topological order, nested models flattened, inputs first."""
    check_inputs(model)
    walker = _Walker()
    scope = _Scope("", {})
    for tensor in model.inputs:
        layer = producer(tensor).operation
        walker.add(LayerNode(layer.name, layer, output_shape=tuple(tensor.shape[1:]), tensor=tensor))
        scope.known[id(tensor)] = layer.name
    for tensor in model.outputs:
        walker.resolve(tensor, scope)
    return walker.nodes


def run(nodes, batch):
    """Every node's output value (by name) for `batch`, computed layer by layer, eagerly, in walk order: what
    the model computes, with each layer's inputs at hand (nested models' layers too)."""
    values = {nodes[0].name: batch}
    for node in nodes[1:]:
        values[node.name] = call_with(node.tensor, arguments(node, values))
    return values


def arguments(node, values):
    """The node's input values keyed by id of its symbolic inputs, as `call_with` takes them."""
    return {id(tensor): values[name] for tensor, name in zip(call_inputs(node.tensor), node.inputs)}


def check_inputs(model):
    """Raise a UsageError unless the model has inputs with every dimension (batch aside) known."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs and len(inputs) > 1:
        raise UsageError(f"model {model.name!r} has {len(inputs)} inputs; analysis handles single-input models")
    if not inputs:
        raise UsageError(f"model {model.name!r} has no input shape (it was never built or called): "
                         "save it after building it with a keras.Input")
    for tensor in inputs:
        shape = tuple(tensor.shape[1:])
        if any(dim is None for dim in shape):
            raise UsageError(f"model {model.name!r} has no fixed input shape ({', '.join(map(str, shape))}): "
                             "analysis needs every input dimension; rebuild it with a fixed keras.Input shape")


@dataclass
class _Scope:
    """Names given so far to tensors of one (possibly nested) model call; prefix for its layer names."""

    prefix: str
    known: dict


class _Walker:
    """Depth-first over Keras tensor history; each layer call becomes one LayerNode after its parents."""

    def __init__(self):
        self.nodes = []
        self._names = set()
        self._layers_seen = set()

    def add(self, node):
        node.first_call = id(node.layer) not in self._layers_seen
        self._layers_seen.add(id(node.layer))
        self.nodes.append(node)
        self._names.add(node.name)

    def resolve(self, tensor, scope):
        """Name of the node that produced `tensor`, recording its unnamed producers first. Iterative, not
        recursive: EfficientNetB7's graph is deeper than Python's recursion limit."""
        stack = [tensor]
        while stack:
            top = stack[-1]
            if id(top) in scope.known:
                stack.pop()
                continue
            layer, node_index, tensor_index = producer(top)
            call = call_of(layer, node_index)
            waiting = [t for t in call.arguments.keras_tensors if id(t) not in scope.known]
            if waiting:
                stack.extend(reversed(waiting))  # the first input is walked first, as a recursive walk would
                continue
            self._record(top, layer, call, tensor_index, scope)
        return scope.known[id(tensor)]

    def _record(self, tensor, layer, call, tensor_index, scope):
        """Add the LayerNode of one call whose inputs are all named (or open the nested model it calls)."""
        parents = [scope.known[id(t)] for t in call.arguments.keras_tensors]
        if hasattr(layer, "inputs") and hasattr(layer, "outputs") and hasattr(layer, "layers"):
            name = self._open_nested(layer, parents, tensor_index, scope)
        else:
            name = self._unique(scope.prefix + layer.name)
            self.add(LayerNode(name, layer, parents, [tuple(t.shape[1:]) for t in call.arguments.keras_tensors],
                               tuple(tensor.shape[1:]), tensor=tensor))
        for out in call.outputs:
            scope.known.setdefault(id(out), name)
        scope.known[id(tensor)] = name

    def _open_nested(self, model, parents, tensor_index, scope):
        """Walk a nested model's graph with its inputs bound to the outer nodes that feed it."""
        prefix = self._unique(scope.prefix + model.name)
        self._names.add(prefix)
        inner = _Scope(prefix + "/", dict(zip(map(id, model.inputs), parents)))
        return self.resolve(model.outputs[tensor_index], inner)

    def _unique(self, name):
        """`name`, or `name#2`, `name#3`... for a layer called more than once."""
        candidate, count = name, 1
        while candidate in self._names:
            count += 1
            candidate = f"{name}#{count}"
        return candidate
