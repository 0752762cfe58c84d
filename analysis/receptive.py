"""Receptive field of every layer, by the recurrences of Araujo, Norris and Sim, "Computing Receptive
Fields of Convolutional Neural Networks" (Distill, 2019), applied forward from the input.

Per spatial axis a layer with kernel k, dilation d (k_eff = d*(k-1)+1), stride s and left padding p maps
the field (size r, jump j, centre of the first unit c) of its input to
    r' = r + (k_eff - 1)*j      (the backward form r_in = s*r_out + (k_eff - s), unrolled)
    j' = j*s
    c' = c + ((k_eff - 1)/2 - p)*j
Upsampling moves units by j/s (like a transposed convolution). Merges (Add, Concatenate...) take the union
of their branches' fields (the worst case) and say when the branches are misaligned; Flatten, global
pooling, attention and everything after them see the whole input ("global").
"""
import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Field:
    """What one unit of a layer sees of the input, per spatial axis, in input pixels.

    size: field size; jump: distance between neighbouring units (effective stride); start: centre of the
    first unit (0 = centre of the first pixel); coverage: (first, last) input pixel any unit can see.
    """

    size: tuple
    jump: tuple
    start: tuple
    coverage: tuple
    is_global: bool = False
    note: str = ""
    known: bool = True
    approximate: bool = False

    @property
    def padding(self):
        """Effective padding: how far the first unit's field reaches before pixel 0 (Distill's P)."""
        return tuple((r - 1) / 2 - c for r, c in zip(self.size, self.start))


def receptive_fields(nodes):
    """A Field for every LayerNode (same order), walking the graph once from its inputs."""
    fields = {}
    for node in nodes:
        parents = [fields[name] for name in node.inputs]
        fields[node.name] = _field(node, parents) if parents else _input_field(node.output_shape[:-1])
    return [fields[node.name] for node in nodes]


def _input_field(image):
    """The input itself: each pixel sees itself; a vector input (no spatial axes) is global at once."""
    axes = len(image)
    return Field((1,) * axes, (1,) * axes, (0.0,) * axes, tuple((0, n - 1) for n in image), is_global=axes == 0)


def _field(node, parents):
    """Dispatch on the layer type; past a global field everything stays global."""
    rule = _rule_for(node)
    if rule is None:
        return replace(_merge(node, parents), note=f"unknown layer {node.kind}: field assumed unchanged", known=False)
    if rule is _merge:
        return rule(node, parents)
    parent = replace(parents[0], note="global" if parents[0].is_global else "", known=True)
    if parent.is_global:
        return parent
    field = rule(node, parent)
    return field if field.is_global else _with_coverage(field, node, parent)


def _rule_for(node):
    for classes, rule in _rules():
        if isinstance(node.layer, classes):
            return rule
    return None


def _rules():
    """(layer classes, rule) pairs; imported lazily so the CLI starts without Keras."""
    from keras import layers as L

    from analysis.keras_internals import application_layers, numpy_ops

    ops = numpy_ops()
    layer_scale, custom_scale = application_layers()

    pointwise = (L.InputLayer, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.GaussianDropout,
                 L.GaussianNoise, L.Identity, L.ActivityRegularization, L.BatchNormalization, L.Rescaling,
                 L.Normalization, L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.PReLU, L.Softmax, layer_scale)
    merges = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate,
              ops.Add, ops.Subtract, ops.Multiply, ops.Divide, ops.TrueDivide, custom_scale)
    return (
        (pointwise, lambda node, parent: parent),
        (merges, _merge),
        ((L.Conv1D, L.Conv2D, L.DepthwiseConv1D, L.DepthwiseConv2D, L.SeparableConv1D, L.SeparableConv2D),
         lambda node, parent: _window(node, parent, node.layer.kernel_size, node.layer.dilation_rate)),
        ((L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D),
         lambda node, parent: _window(node, parent, node.layer.pool_size, (1,) * len(node.layer.pool_size))),
        ((L.ZeroPadding1D, L.ZeroPadding2D), _zero_padding),
        ((L.Cropping1D, L.Cropping2D), _cropping),
        ((L.Conv1DTranspose, L.Conv2DTranspose), _transpose),
        ((L.UpSampling1D, L.UpSampling2D), _upsampling),
        ((L.LayerNormalization, L.RMSNormalization), _layer_norm),
        ((L.Flatten, L.Reshape, L.Permute, L.GlobalAveragePooling1D, L.GlobalAveragePooling2D,
          L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GroupNormalization, L.MultiHeadAttention), _global),
        (L.Dense, lambda node, parent: parent if len(node.input_shapes[0]) > 1 else _global(node, parent)),
    )


def _slide(parent, kernels, strides, pads):
    """The Distill recurrences, per axis, for a sliding window of effective size k moving by s after p padding."""
    size, jump, start = [], [], []
    for r, j, c, k, s, p in zip(parent.size, parent.jump, parent.start, kernels, strides, pads):
        size.append(r + (k - 1) * j)
        jump.append(j * s)
        start.append(c + ((k - 1) / 2 - p) * j)
    return replace(parent, size=tuple(size), jump=tuple(jump), start=tuple(start))


def _window(node, parent, kernel, dilation):
    """Conv or pooling: effective kernel d*(k-1)+1, the layer's strides, and its padding's left part."""
    layer = node.layer
    strides = getattr(layer, "strides", None) or kernel
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    pads = [_left_pad(layer.padding, n, k, s) for n, k, s in zip(node.input_shapes[0][:-1], k_eff, strides)]
    return _slide(parent, k_eff, strides, pads)


def _left_pad(padding, n, k_eff, stride):
    """Padding before the first pixel: 0 for 'valid'; TensorFlow's 'same' puts the odd pixel at the end."""
    if padding == "same":
        return max((math.ceil(n / stride) - 1) * stride + k_eff - n, 0) // 2
    if padding == "causal":
        return k_eff - 1
    return 0


def _pairs(value, axes):
    """Keras padding/cropping attributes as one (before, after) pair per axis."""
    return (tuple(value),) if axes == 1 else tuple(tuple(v) for v in value)


def _zero_padding(node, parent):
    axes = len(parent.size)
    pads = [before for before, _ in _pairs(node.layer.padding, axes)]
    return _slide(parent, (1,) * axes, (1,) * axes, pads)


def _cropping(node, parent):
    axes = len(parent.size)
    pads = [-before for before, _ in _pairs(node.layer.cropping, axes)]
    return _slide(parent, (1,) * axes, (1,) * axes, pads)


def _transpose(node, parent):
    """Transposed conv: units move by j/s; an output unit gathers at most ceil(k/s) input units (worst case)."""
    layer = node.layer
    size, jump, start = [], [], []
    for r, j, c, n, k, s in zip(parent.size, parent.jump, parent.start, node.input_shapes[0][:-1],
                                layer.kernel_size, layer.strides):
        pad = max(k - s, 0) // 2 if layer.padding == "same" else 0
        size.append(r + (math.ceil(k / s) - 1) * j)
        jump.append(j / s)
        start.append(c + (pad - (k - 1) / 2) / s * j)
    return replace(parent, size=tuple(size), jump=tuple(jump), start=tuple(start), approximate=True,
                   note="transposed: worst case over output positions")


def _upsampling(node, parent):
    """UpSampling by s: units move by j/s, output unit i centred near input unit (i - (s-1)/2)/s, off by up
    to (s-1)/(2s) units (nearest copies unit floor(i/s); bilinear blends two neighbours per axis): worst case."""
    sizes = node.layer.size if isinstance(node.layer.size, (tuple, list)) else (node.layer.size,)
    reach = 0 if getattr(node.layer, "interpolation", "nearest") == "nearest" else 1
    size = tuple(r + reach * j + (s - 1) / s * j for r, j, s in zip(parent.size, parent.jump, sizes))
    jump = tuple(j / s for j, s in zip(parent.jump, sizes))
    start = tuple(c - (s - 1) / (2 * s) * j for c, j, s in zip(parent.start, parent.jump, sizes))
    return replace(parent, size=size, jump=jump, start=start, approximate=True,
                   note="upsampling: worst case over output positions")


def _layer_norm(node, parent):
    """Layer/RMS normalisation over the channels only is pointwise; over a spatial axis, its statistics see the
    map."""
    axes = (node.layer.axis,) if isinstance(node.layer.axis, int) else tuple(node.layer.axis)
    rank = len(node.input_shapes[0]) + 1
    return parent if all(a % rank == rank - 1 for a in axes) else _global(node, parent)


def _global(node, parent):
    """Flatten, Reshape, global pooling, GroupNormalization (statistics over the whole map), attention (every
    position attends to all): every output may depend on every pixel the input layer sees."""
    return replace(parent, is_global=True, note="global")


def _merge(node, parents):
    """Union of the branches' fields (the worst case); misaligned when their grids differ."""
    coverage = tuple((min(p.coverage[a][0] for p in parents), max(p.coverage[a][1] for p in parents))
                     for a in range(len(parents[0].coverage)))
    if any(p.is_global for p in parents):
        return replace(parents[0], coverage=coverage, is_global=True, note="global")
    size, start = [], []
    for a in range(len(parents[0].size)):
        first = min(p.start[a] - (p.size[a] - 1) / 2 for p in parents)
        last = max(p.start[a] + (p.size[a] - 1) / 2 for p in parents)
        size.append(last - first + 1)
        start.append((first + last) / 2)
    jump = tuple(max(p.jump[a] for p in parents) for a in range(len(size)))
    aligned = all(p.start == parents[0].start and p.jump == parents[0].jump for p in parents)
    note = "" if aligned else "branches misaligned: " + "; ".join(
        f"{name} start {_fmt(p.start)} jump {_fmt(p.jump)}" for name, p in zip(node.inputs, parents))
    return Field(_int(size), jump, tuple(start), coverage, note=note, approximate=any(p.approximate for p in parents))


def _with_coverage(field, node, parent):
    """Set the input pixels the layer's units see together: first unit's left edge to last unit's right edge,
    within what its input's units see (a window over 'same' padding reaches no further pixels)."""
    coverage = []
    for r, j, c, n, (low, high) in zip(field.size, field.jump, field.start, node.output_shape[:-1], parent.coverage):
        first = c - (r - 1) / 2
        last = c + (n - 1) * j + (r - 1) / 2
        coverage.append((max(math.ceil(first), low), min(math.floor(last), high)))
    return replace(field, size=_int(field.size), coverage=tuple(coverage))


def unit_bounds(field, index):
    """(first, last) input pixel per axis that unit `index` (a position per axis) of a local field can see."""
    bounds = []
    for r, j, c, i, (low, high) in zip(field.size, field.jump, field.start, index, field.coverage):
        centre = c + i * j
        bounds.append((max(math.ceil(centre - (r - 1) / 2), low), min(math.floor(centre + (r - 1) / 2), high)))
    return tuple(bounds)


def _int(values):
    return tuple(int(v) if float(v).is_integer() else v for v in values)


def _fmt(values):
    return "x".join(f"{v:g}" for v in values)
