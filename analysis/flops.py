"""Per-layer cost from each layer's configuration and shapes: MACs, FLOPs in our convention, and the
FLOPs TensorFlow's profiler (tf.compat.v1.profiler float_operation, frozen graph, batch 1) reports.

Each helper works out one layer type for one image; `layer_cost` dispatches on the layer's class, and
`model_costs` applies it to a walked graph (its tf-profiler column drops what the profiler cannot see after
a grouped convolution).
Our convention ("standard"): 1 multiply-add = 1 MAC = 2 FLOPs; see STANDARD_RULES for the rest.
The "tf-profiler" column follows what the profiler registers for the ops Keras 3 emits on TensorFlow:
it counts bias adds, pooling windows, softmax, BatchNormalization's arithmetic, but not ReLU/sigmoid/tanh.
"""
import math
from dataclasses import dataclass, replace

STANDARD_RULES = (
    "1 multiply-add = 1 MAC = 2 FLOPs (convolutions, depthwise/separable/transposed convolutions, dense). "
    "Bias: 1 FLOP per output element. Activations: 1 FLOP per output element (ReLU, sigmoid, softmax... alike; "
    "linear 0). BatchNormalization (inference, folded): 2 per element. Rescaling: 1 per element (2 with an offset). "
    "Normalization: 2 per element. LayerNormalization/GroupNormalization: 5 per element (mean, subtract, square, "
    "sum, multiply by 1/std) + 2 per group (add epsilon, rsqrt), +1 per element for the scale, +1 for the offset; "
    "RMSNormalization: 4 per element (square, sum, two multiplies) + 2 per group; "
    "MultiHeadAttention: 2 per MAC of its projections and attention products, a bias per projected value, "
    "1 per score to scale it and 1 to softmax it. LayerScale (ConvNeXt): 1 per element; CustomScaleLayer "
    "(InceptionResNetV2, a + b*scale): 2. UpSampling1D/2D: nearest 0, bilinear 7 per output (4 weights x 4 "
    "neighbours). "
    "Max pooling: window-1 comparisons per output; average pooling: window per output; "
    "global average pooling: 1 per input element; global max pooling: inputs-outputs. Add/Subtract/Multiply/Maximum/"
    "Minimum: (inputs-1) per output element; Average: inputs per output element. Concatenate, Flatten, Reshape, "
    "Dropout (inference), padding, cropping: 0."
)
TF_PROFILER_RULES = (
    "What tf.compat.v1.profiler's float_operation counts on the frozen inference graph (batch 1): convolutions "
    "and matmuls 2 per MAC (dilated convolutions over TensorFlow's space-to-batch padded grid; grouped "
    "convolutions 0, and their output shape is hidden from it, so the layers computed from it count nothing "
    "but their per-channel parts until a Flatten, Reshape, Dense or UpSampling2D fixes the shape again; "
    "transposed: 2*outputs*kernel area*input channels/stride area), BiasAdd 1 per output, "
    "ReLU/ReLU6/sigmoid/tanh/ELU 0, softmax 5 per element, pooling windows 1 per window element per output, "
    "global average 1 per input, global max 0, BatchNormalization 2 per element + 6 per channel, "
    "Rescaling 2 per element, merges (inputs-1) per output, Layer/GroupNormalization 6 per element + 5 per group "
    "(+ 2 per scaled value - 1 per group with a scale, + 1 per offset value), RMSNormalization 4 per element + 3 "
    "per group, LayerScale 1 and CustomScaleLayer 2 per "
    "element, MultiHeadAttention its projections only (2 per MAC, not the attention einsums) + biases + 6 per "
    "score, nearest UpSampling2D 2 (the new size), bilinear 0."
)
TRAINING_RULE = "training step ~ 3 x forward (backward ~ 2 x forward: gradients w.r.t. activations and w.r.t. weights)"

# Per output element, what the profiler registers for the TensorFlow ops of each Keras 3 activation
# (measured op by op on single-layer models; unlisted activations emit no registered op).
TF_ACTIVATION_FLOPS = {
    "softmax": 5, "celu": 5, "sparse_plus": 5, "gelu": 4, "squareplus": 4, "soft_shrink": 4,
    "hard_swish": 3, "hard_silu": 3, "swish": 2, "silu": 2, "hard_sigmoid": 2, "hard_tanh": 2,
    "log_sigmoid": 2, "mish": 1, "tanh_shrink": 1, "hard_shrink": 1, "glu": 1,
}


@dataclass(frozen=True)
class Cost:
    """One layer call's cost for one image; `known` is False for a layer type without a rule."""

    macs: int = 0
    flops: int = 0
    tf_flops: int = 0
    known: bool = True


def layer_cost(node):
    """The Cost of one LayerNode, dispatched on its layer class; unknown types cost zero, flagged."""
    for classes, helper in _rules():
        if isinstance(node.layer, classes):
            return helper(node)
    return Cost(known=False)


def model_costs(nodes):
    """Every LayerNode's Cost, with the profiler's blind spot: a grouped convolution is an opaque function call
    whose output shape TensorFlow cannot see, and the profiler counts nothing it cannot see the shape of. The
    blindness runs on through every layer until one that fixes the shape again (see _shows_shape)."""
    hidden, costs = set(), []
    for node in nodes:
        cost = layer_cost(node)
        if any(name in hidden for name in node.inputs):
            cost = replace(cost, tf_flops=_seen_blind(node, cost))
            if not _shows_shape(node):
                hidden.add(node.name)
        if _is_grouped_conv(node):
            hidden.add(node.name)
        costs.append(cost)
    return costs


def _is_grouped_conv(node):
    from keras import layers as L

    return isinstance(node.layer, (L.Conv1D, L.Conv2D, L.Conv3D)) and node.layer.groups > 1


def _seen_blind(node, cost):
    """What the profiler still counts of a layer whose input shape it cannot see: a Dense over a map in full (it
    reshapes to a fixed width first), the fixed-shape parts (normalisation statistics per channel, nearest
    upsampling's new size), nothing else."""
    from keras import layers as L

    if isinstance(node.layer, (L.Dense, L.UpSampling2D)) and len(node.input_shapes[0]) > 1:
        return cost.tf_flops
    if isinstance(node.layer, (L.BatchNormalization, L.Normalization)):
        return cost.tf_flops - 2 * _elements(node.output_shape)
    return 0


def _shows_shape(node):
    """Layers whose TensorFlow ops give their output a known shape again (measured one by one after a grouped
    convolution): Flatten, Reshape, a Dense over a map, UpSampling2D (a resize to a fixed size)."""
    from keras import layers as L

    if isinstance(node.layer, L.Dense):
        return len(node.input_shapes[0]) > 1
    return isinstance(node.layer, (L.Flatten, L.Reshape, L.UpSampling2D))


def _rules():
    """(layer classes, helper) pairs; imported lazily so the CLI starts without Keras."""
    from keras import layers as L

    from analysis.keras_internals import application_layers, numpy_ops

    ops = numpy_ops()  # `x + y`, `x * 0.5` in a functional graph are op nodes, not layers
    layer_scale, custom_scale = application_layers()

    zero = (L.InputLayer, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.GaussianDropout, L.GaussianNoise,
            L.Flatten, L.Reshape, L.Permute, L.ZeroPadding1D, L.ZeroPadding2D, L.Cropping1D, L.Cropping2D,
            L.Identity, L.ActivityRegularization, L.Concatenate, L.UpSampling1D)
    return (
        (zero, lambda node: Cost()),
        ((L.Conv1D, L.Conv2D), _conv),
        ((L.DepthwiseConv1D, L.DepthwiseConv2D), _depthwise),
        ((L.SeparableConv1D, L.SeparableConv2D), _separable),
        ((L.Conv1DTranspose, L.Conv2DTranspose), _transpose),
        (L.Dense, _dense),
        ((L.MaxPooling1D, L.MaxPooling2D), _max_pool),
        ((L.AveragePooling1D, L.AveragePooling2D), _avg_pool),
        ((L.GlobalAveragePooling1D, L.GlobalAveragePooling2D), _global_avg),
        ((L.GlobalMaxPooling1D, L.GlobalMaxPooling2D), _global_max),
        (L.BatchNormalization, _batch_norm),
        (L.Rescaling, _rescaling),
        (L.Normalization, _normalization),
        (L.LayerNormalization, _layer_norm),
        (L.RMSNormalization, _rms_norm),
        (L.GroupNormalization, _group_norm),
        (L.UpSampling2D, _upsampling),
        (L.MultiHeadAttention, _attention),
        (layer_scale, lambda node: _elementwise(node, 1, 1)),
        (custom_scale, lambda node: _elementwise(node, 2, 2)),
        (L.Activation, lambda node: _activation(node, node.layer.activation)),
        (L.ReLU, _relu),
        ((L.LeakyReLU, L.ELU), lambda node: Cost(flops=_elements(node.output_shape))),
        (L.PReLU, lambda node: _elementwise(node, 1, 4)),
        (L.Softmax, lambda node: _elementwise(node, 1, 5)),
        (L.Average, _average),
        ((L.Add, L.Subtract, L.Multiply, L.Maximum, L.Minimum), _merge),
        ((ops.Add, ops.Subtract, ops.Multiply, ops.Divide, ops.TrueDivide), _op),
    )


def _elements(shape):
    return math.prod(shape)


def _elementwise(node, standard, tf, macs=0):
    """A cost of `standard` / `tf` FLOPs per output element."""
    n = _elements(node.output_shape)
    return Cost(macs, standard * n, tf * n)


def _activation_name(fn):
    return getattr(fn, "__name__", str(fn))


def _activation(node, fn):
    """An activation over the output: 1 FLOP per element (0 if linear); the profiler's per-op count."""
    name = _activation_name(fn)
    if name == "linear":
        return Cost()
    return _elementwise(node, 1, TF_ACTIVATION_FLOPS.get(name, 0))


def _with_bias_and_activation(node, macs, tf_core):
    """2 FLOPs per MAC, plus 1 per output for the bias and the activation's own cost."""
    layer, n = node.layer, _elements(node.output_shape)
    bias = n if getattr(layer, "use_bias", False) else 0
    act = _activation(node, layer.activation)
    return Cost(macs, 2 * macs + bias + act.flops, tf_core + bias + act.tf_flops)


def _tf_positions(node):
    """Output positions TensorFlow computes: a dilated conv runs over a space-to-batch grid padded to a
    multiple of the rate, so it computes rate*(ceil(n'/rate) - k + 1) positions per axis, n' = padded input."""
    layer = node.layer
    if all(d == 1 for d in layer.dilation_rate):
        return _elements(node.output_shape[:-1])
    positions = 1
    for n, k, d in zip(node.input_shapes[0][:-1], layer.kernel_size, layer.dilation_rate):
        if layer.padding in ("same", "causal"):
            n += d * (k - 1)  # TensorFlow pads (k-1)*d before splitting the input into d blocks
        positions *= d * (math.ceil(n / d) - k + 1)
    return positions


def _conv(node):
    """Conv1D/2D: per output position and filter, k_h*k_w*c_in/groups multiply-adds."""
    layer = node.layer
    window = math.prod(layer.kernel_size) * node.input_shapes[0][-1] // layer.groups
    macs = _elements(node.output_shape) * window
    cost = _with_bias_and_activation(node, macs, 2 * _tf_positions(node) * window * layer.filters)
    if layer.groups > 1:  # a grouped conv is an opaque function call in the graph: the profiler counts nothing
        return Cost(cost.macs, cost.flops, 0)
    return cost


def _depthwise(node):
    """DepthwiseConv: per output position, each of c_in*multiplier channels sees only k_h*k_w inputs."""
    layer = node.layer
    window = math.prod(layer.kernel_size)
    channels = node.output_shape[-1]
    macs = _elements(node.output_shape) * window
    return _with_bias_and_activation(node, macs, 2 * _tf_positions(node) * window * channels)


def _separable(node):
    """SeparableConv: a depthwise k_h*k_w pass over c_in*multiplier channels, then a 1x1 conv to the filters."""
    layer = node.layer
    window = math.prod(layer.kernel_size)
    mid = node.input_shapes[0][-1] * layer.depth_multiplier
    positions = _elements(node.output_shape[:-1])
    pointwise = positions * mid * layer.filters
    macs = positions * mid * window + pointwise
    return _with_bias_and_activation(node, macs, 2 * (_tf_positions(node) * mid * window + pointwise))


def _transpose(node):
    """Conv transpose: each input position scatters k_h*k_w*c_out products per input channel.
    The profiler's Conv2DBackpropInput rule: 2 * outputs * k_h*k_w*c_in / (s_h*s_w)."""
    layer = node.layer
    c_in = node.input_shapes[0][-1]
    window = math.prod(layer.kernel_size)
    macs = _elements(node.input_shapes[0][:-1]) * window * c_in * layer.filters
    tf_core = int(2 * _elements(node.output_shape) * window * c_in / math.prod(layer.strides))
    return _with_bias_and_activation(node, macs, tf_core)


def _dense(node):
    """Dense: per position (1 after Flatten), in_features multiply-adds for each unit."""
    macs = _elements(node.input_shapes[0]) * node.layer.units
    return _with_bias_and_activation(node, macs, 2 * macs)


def _max_pool(node):
    """Max pooling: window-1 comparisons per output; the profiler counts the whole window."""
    window = math.prod(node.layer.pool_size)
    n = _elements(node.output_shape)
    return Cost(0, n * (window - 1), n * window)


def _avg_pool(node):
    """Average pooling: window-1 additions and 1 division per output = window."""
    return _elementwise(node, math.prod(node.layer.pool_size), math.prod(node.layer.pool_size))


def _global_avg(node):
    """Global average: one addition per input element (the division replaces the first add)."""
    n = _elements(node.input_shapes[0])
    return Cost(0, n, n)


def _global_max(node):
    """Global max: inputs-outputs comparisons; the profiler has no rule for TensorFlow's Max op."""
    return Cost(0, _elements(node.input_shapes[0]) - _elements(node.output_shape), 0)


def _batch_norm(node):
    """Inference BatchNormalization: x*a + b per element (2 FLOPs). TensorFlow computes a and b in the graph:
    var+eps, rsqrt (2), *gamma, mean*a, beta-(mean*a): 5 per channel without gamma, 6 with, plus 2 per element."""
    layer = node.layer
    channels = ((None,) + tuple(node.input_shapes[0]))[layer.axis]
    n = _elements(node.output_shape)
    return Cost(0, 2 * n, 2 * n + channels * (6 if layer.scale else 5))


def _rescaling(node):
    """Rescaling: x*scale (+ offset): TensorFlow always emits both the multiply and the add."""
    has_offset = any(v != 0 for v in _flat(node.layer.offset))
    return _elementwise(node, 2 if has_offset else 1, 2)


def _flat(value):
    try:
        return [float(v) for v in value]
    except TypeError:
        return [float(value)]


def _normalization(node):
    """Normalization: (x - mean) / sqrt(var): 2 per element; TensorFlow adds a max(sqrt(var), eps) per statistic."""
    layer = node.layer
    n = _elements(node.output_shape)
    full = (None,) + tuple(node.input_shapes[0])
    axes = (layer.axis,) if isinstance(layer.axis, int) else tuple(layer.axis)
    stats = 0 if layer.invert else math.prod(full[a] for a in axes)
    return Cost(0, 2 * n, 2 * n + stats)


def _layer_norm(node):
    """LayerNormalization: statistics per position over `axis` (the channels, usually); gamma and beta have
    the normalised axes' shape, so with either, TensorFlow's scale/offset arithmetic runs on every element."""
    n = _elements(node.output_shape)
    return _norm_cost(n, _norm_groups(node), n, node.layer.scale, node.layer.center)


def _rms_norm(node):
    """RMSNormalization: x * rsqrt(mean(x^2) + eps) * scale: square, sum and two multiplies per element, epsilon
    and rsqrt per group; TensorFlow: 4 per element + 3 per group (checked against the profiler on 5 shapes)."""
    n, groups = _elements(node.output_shape), _norm_groups(node)
    return Cost(0, 4 * n + 2 * groups, 4 * n + 3 * groups)


def _norm_groups(node):
    """How many groups of values a Layer/RMS normalisation normalises separately: elements / normalised size."""
    shape = (None,) + tuple(node.input_shapes[0])
    axes = (node.layer.axis,) if isinstance(node.layer.axis, int) else tuple(node.layer.axis)
    return _elements(node.output_shape) // math.prod(shape[a] for a in axes)


def _group_norm(node):
    """GroupNormalization: statistics per group of channels over the whole map; TensorFlow folds gamma and
    beta into per-channel values (groups x channels/group) before the per-element multiply-add."""
    layer = node.layer
    channels = ((None,) + tuple(node.input_shapes[0]))[layer.axis]
    return _norm_cost(_elements(node.output_shape), layer.groups, channels, layer.scale, layer.center)


def _norm_cost(n, groups, folded, scale, center):
    """Normalisation computed from the data. Ours: mean, x-mean, square, sum, *1/std = 5 per element, 2 per
    group (epsilon, rsqrt), 1 per element each for scale and offset. TensorFlow (tf.nn.moments, then
    x*inv + (-mean*inv + beta)): 6 per element + 5 per group; a scale turns inv into `folded` values
    (+2*folded - groups), an offset adds `folded`. Checked against the profiler on 4 configurations x 5 shapes."""
    standard = 5 * n + 2 * groups + n * scale + n * center
    tf = 6 * n + 5 * groups + (2 * folded - groups) * scale + folded * center
    return Cost(0, standard, tf)


def _upsampling(node):
    """UpSampling: nearest copies (0); bilinear weighs 4 neighbours per output (4 multiplies, 3 adds).
    The profiler counts only nearest's new-size multiply (2 integers) and nothing of the resize itself."""
    if node.layer.interpolation == "nearest":
        return Cost(0, 0, 2)
    return Cost(0, 7 * _elements(node.output_shape), 0)


def _attention(node):
    """MultiHeadAttention (h heads, key size d, value size dv, over all positions): projections Tq*Eq*h*d,
    Tv*Ek*h*d, Tv*Ev*h*dv and Tq*h*dv*Eo MACs, scores h*Tq*Tv*d, weighted values h*Tq*Tv*dv; per score a scale
    and a softmax (1 FLOP each; the profiler 1 and 5); a bias per projected value. The profiler counts the
    projections (BatchMatMul) but not the two attention einsums."""
    layer, shapes = node.layer, node.input_shapes
    h, d = layer.num_heads, layer.key_dim
    dv = layer.value_dim or d
    tq, tv = _elements(shapes[0][:-1]), _elements(shapes[1][:-1])
    eq, ev, ek = shapes[0][-1], shapes[1][-1], shapes[-1][-1]
    eo = _elements(node.output_shape) // tq
    projections = tq * eq * h * d + tv * ek * h * d + tv * ev * h * dv + tq * h * dv * eo
    attention = h * tq * tv * (d + dv)
    bias = (tq * h * d + tv * h * d + tv * h * dv + tq * eo) if layer.get_config()["use_bias"] else 0
    scores = h * tq * tv
    macs = projections + attention
    return Cost(macs, 2 * macs + bias + 2 * scores, 2 * projections + bias + 6 * scores)


def _relu(node):
    """ReLU layer: 1 per element; TensorFlow's Relu/Relu6/LeakyRelu are unregistered, a threshold adds 1."""
    return _elementwise(node, 1, 1 if node.layer.threshold else 0)


def _merge(node):
    """Add/Subtract/Multiply/Maximum/Minimum: inputs-1 binary operations per output element."""
    per = len(node.input_shapes) - 1
    return _elementwise(node, per, per)


def _op(node):
    """An arithmetic op node (`x + 3`, `a * b`): one operation per output element per extra operand."""
    per = max(len(node.input_shapes) - 1, 1)
    return _elementwise(node, per, per)


def _average(node):
    """Average: inputs-1 additions and one division per output element."""
    per = len(node.input_shapes)
    return _elementwise(node, per, per)
