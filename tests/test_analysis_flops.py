"""Per-layer cost formulas: expected MACs, standard FLOPs and profiler FLOPs written as arithmetic."""
import pytest

from common.tfenv import quiet_tensorflow

quiet_tensorflow()
import keras  # noqa: E402
from keras import layers as L  # noqa: E402

from analysis.flops import layer_cost  # noqa: E402
from analysis.graph import walk  # noqa: E402
from analysis.keras_internals import application_layers  # noqa: E402


def single(layer, shape):
    """A model made of one layer on an input of `shape` (no batch axis)."""
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


def last_cost(model):
    return layer_cost(walk(model)[-1])


# (layer factory, input shape, MACs, standard FLOPs, TF-profiler FLOPs), worked out by hand.
CASES = [
    # 6x6x6 outputs, 3*3*4 MACs each; bias and ReLU 1 per output; the profiler skips ReLU
    (lambda: L.Conv2D(6, 3, activation="relu"), (8, 8, 4), 216 * 36, 2 * 216 * 36 + 216 + 216, 2 * 216 * 36 + 216),
    # stride 2 'same': 4x4x6 outputs, no bias
    (lambda: L.Conv2D(6, 3, strides=2, padding="same", use_bias=False), (8, 8, 4), 96 * 36, 2 * 96 * 36, 2 * 96 * 36),
    # groups=2: each output sees 3*3*(4/2) inputs; the profiler cannot see inside a grouped conv
    (lambda: L.Conv2D(8, 3, groups=2), (8, 8, 4), 288 * 18, 2 * 288 * 18 + 288, 0),
    # dilation 2 on 9x9: 5x5 outputs; TF's space-to-batch computes 2*(ceil(9/2)-3+1) = 6 positions per axis
    (lambda: L.Conv2D(6, 3, dilation_rate=2), (9, 9, 4), 150 * 36, 2 * 150 * 36 + 150, 2 * 36 * 36 * 6 + 150),
    # Conv1D stride 2: 4 positions x 6 filters, 3*4 MACs each
    (lambda: L.Conv1D(6, 3, strides=2), (10, 4), 24 * 12, 2 * 24 * 12 + 24, 2 * 24 * 12 + 24),
    # depthwise: 6x6x4 outputs, 3*3 MACs each
    (lambda: L.DepthwiseConv2D(3), (8, 8, 4), 144 * 9, 2 * 144 * 9 + 144, 2 * 144 * 9 + 144),
    # separable: depthwise 36*4*9, pointwise 36*4*6
    (lambda: L.SeparableConv2D(6, 3), (8, 8, 4), 36 * 4 * 9 + 36 * 4 * 6, 2 * (36 * 4 * 9 + 36 * 4 * 6) + 216,
     2 * (36 * 4 * 9 + 36 * 4 * 6) + 216),
    # transposed stride 2: 8*8 inputs scatter 3*3*6 products per input channel; 17x17x6 outputs;
    # profiler: 2 * outputs * 3*3 * c_in / (2*2)
    (lambda: L.Conv2DTranspose(6, 3, strides=2), (8, 8, 4), 64 * 9 * 4 * 6, 2 * 64 * 9 * 4 * 6 + 1734,
     2 * 1734 * 9 * 4 // 4 + 1734),
    # Dense per position on 8x8x4: 64 positions x 4 inputs x 5 units
    (lambda: L.Dense(5), (8, 8, 4), 64 * 4 * 5, 2 * 64 * 4 * 5 + 320, 2 * 64 * 4 * 5 + 320),
    # Dense with softmax: bias 5, softmax 1 per output (profiler: 5 per output)
    (lambda: L.Dense(5, activation="softmax"), (16,), 80, 2 * 80 + 5 + 5, 2 * 80 + 5 + 5 * 5),
    # pooling 2x2 -> 4x4x4 outputs: 3 comparisons each (profiler: the 4-element window)
    (lambda: L.MaxPooling2D(2), (8, 8, 4), 0, 64 * 3, 64 * 4),
    (lambda: L.MaxPooling2D(3, strides=2, padding="same"), (8, 8, 4), 0, 64 * 8, 64 * 9),
    (lambda: L.AveragePooling2D(2), (8, 8, 4), 0, 64 * 4, 64 * 4),
    (lambda: L.MaxPooling1D(2), (10, 4), 0, 20 * 1, 20 * 2),
    (lambda: L.GlobalAveragePooling2D(), (8, 8, 4), 0, 256, 256),
    (lambda: L.GlobalMaxPooling2D(), (8, 8, 4), 0, 256 - 4, 0),
    # BN: scale and shift per element; TF also builds rsqrt(var+eps)*gamma etc: 6 per channel (5 without gamma)
    (lambda: L.BatchNormalization(), (8, 8, 4), 0, 2 * 256, 2 * 256 + 6 * 4),
    (lambda: L.BatchNormalization(scale=False), (8, 8, 4), 0, 2 * 256, 2 * 256 + 5 * 4),
    (lambda: L.Rescaling(1 / 255), (8, 8, 4), 0, 256, 2 * 256),
    (lambda: L.Rescaling(2.0, offset=-1.0), (8, 8, 4), 0, 2 * 256, 2 * 256),
    (lambda: L.Normalization(mean=[1, 2, 3, 4], variance=[1, 2, 3, 4]), (8, 8, 4), 0, 2 * 256, 2 * 256 + 4),
    (lambda: L.Activation("relu"), (8, 8, 4), 0, 256, 0),
    (lambda: L.Activation("softmax"), (8, 8, 4), 0, 256, 5 * 256),
    (lambda: L.Activation("swish"), (8, 8, 4), 0, 256, 2 * 256),
    (lambda: L.Activation("linear"), (8, 8, 4), 0, 0, 0),
    (lambda: L.ReLU(), (8, 8, 4), 0, 256, 0),
    (lambda: L.LeakyReLU(), (8, 8, 4), 0, 256, 0),
    (lambda: L.PReLU(), (8, 8, 4), 0, 256, 4 * 256),
    (lambda: L.Softmax(), (8, 8, 4), 0, 256, 5 * 256),
    (lambda: L.Dropout(0.5), (8, 8, 4), 0, 0, 0),
    (lambda: L.Flatten(), (8, 8, 4), 0, 0, 0),
    (lambda: L.ZeroPadding2D(1), (8, 8, 4), 0, 0, 0),
    (lambda: L.Cropping2D(1), (8, 8, 4), 0, 0, 0),
    # LayerNormalization over 8 channels at 4x4 positions: 128 elements, 16 groups; gamma and beta reach all 128
    # ours 5 per element + 2 per group + 1 each for scale and offset; TF 6 + 5, + (2*128 - 16) + 128
    (lambda: L.LayerNormalization(), (4, 4, 8), 0, 5 * 128 + 2 * 16 + 128 + 128,
     6 * 128 + 5 * 16 + (2 * 128 - 16) + 128),
    (lambda: L.LayerNormalization(center=False, scale=False), (4, 4, 8), 0, 5 * 128 + 2 * 16, 6 * 128 + 5 * 16),
    # over the whole image: one group
    (lambda: L.LayerNormalization(axis=(1, 2, 3), center=False), (4, 4, 8), 0, 5 * 128 + 2 + 128,
     6 * 128 + 5 + (2 * 128 - 1)),
    # GroupNormalization, 4 groups of 2 channels: TF folds gamma/beta into 8 per-channel values
    (lambda: L.GroupNormalization(groups=4), (4, 4, 8), 0, 5 * 128 + 2 * 4 + 128 + 128,
     6 * 128 + 5 * 4 + (2 * 8 - 4) + 8),
    (lambda: L.GroupNormalization(groups=2, scale=False), (4, 4, 8), 0, 5 * 128 + 2 * 2 + 128, 6 * 128 + 5 * 2 + 8),
    # RMSNormalization over 8 channels at 16 positions: 4 per element; 2 per group (TF 3)
    (lambda: L.RMSNormalization(), (4, 4, 8), 0, 4 * 128 + 2 * 16, 4 * 128 + 3 * 16),
    (lambda: application_layers()[0](1e-6, 8), (4, 4, 8), 0, 128, 128),  # LayerScale: x * gamma
    # UpSampling2D to 8x8x3: nearest copies (the profiler counts the new size, 2 integers); bilinear 4 mul + 3 add
    (lambda: L.UpSampling2D(2), (4, 4, 3), 0, 0, 2),
    (lambda: L.UpSampling2D(2, interpolation="bilinear"), (4, 4, 3), 0, 7 * 192, 0),
    (lambda: L.UpSampling1D(2), (5, 3), 0, 0, 0),
]


@pytest.mark.parametrize("make, shape, macs, flops, tf_flops", CASES,
                         ids=[f"{c[0]().__class__.__name__}-{i}" for i, c in enumerate(CASES)])
def test_layer_formulas(make, shape, macs, flops, tf_flops):
    cost = last_cost(single(make(), shape))
    assert (cost.macs, cost.flops, cost.tf_flops) == (macs, flops, tf_flops)
    assert cost.known


@pytest.mark.parametrize("merge, n_inputs, per_element", [
    (L.Add, 2, 1), (L.Add, 3, 2), (L.Multiply, 2, 1), (L.Subtract, 2, 1), (L.Maximum, 3, 2),
    (L.Average, 3, 3), (L.Concatenate, 2, 0),
])
def test_merge_formulas(merge, n_inputs, per_element):
    inputs = keras.Input((8, 8, 4))
    model = keras.Model(inputs, merge()([inputs] * n_inputs))
    cost = last_cost(model)
    assert (cost.macs, cost.flops, cost.tf_flops) == (0, per_element * 8 * 8 * 4, per_element * 8 * 8 * 4)


def test_custom_scale_layer_is_a_multiply_add():
    """InceptionResNetV2's residual: inputs[0] + inputs[1] * scale, 2 per output element."""
    inputs = keras.Input((8, 8, 4))
    cost = last_cost(keras.Model(inputs, application_layers()[1](0.17)([inputs, inputs])))
    assert (cost.macs, cost.flops, cost.tf_flops, cost.known) == (0, 2 * 256, 2 * 256, True)


def test_attention_by_hand():
    """2 heads, key size 3, value size 5, over 5 positions of 4 features (output 4 features)."""
    inputs = keras.Input((5, 4))
    cost = last_cost(keras.Model(inputs, L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=5)(inputs, inputs)))
    projections = 5 * 4 * 2 * 3 + 5 * 4 * 2 * 3 + 5 * 4 * 2 * 5 + 5 * 2 * 5 * 4  # query, key, value, output
    attention = 2 * 5 * 5 * 3 + 2 * 5 * 5 * 5  # scores, then the weighted sum of values
    bias = 5 * 2 * 3 + 5 * 2 * 3 + 5 * 2 * 5 + 5 * 4
    scores = 2 * 5 * 5
    assert cost.macs == projections + attention
    assert cost.flops == 2 * (projections + attention) + bias + 2 * scores
    assert cost.tf_flops == 2 * projections + bias + 6 * scores


def test_card_model_macs_are_the_issue_figures():
    from cnn.models.architectures import build_cnn

    nodes = walk(build_cnn(46))
    macs = {node.name: layer_cost(node).macs for node in nodes}
    # conv: output positions x filters x 3*3*c_in; dense: 30*30*128 inputs x 46 units
    assert macs["conv1"] == 254 * 254 * 32 * 3 * 3 * 3 == 55_741_824
    assert macs["conv2"] == 125 * 125 * 64 * 3 * 3 * 32 == 288_000_000
    assert macs["conv3"] == 60 * 60 * 128 * 3 * 3 * 64 == 265_420_800
    assert macs["predictions"] == 30 * 30 * 128 * 46 == 5_299_200
    assert sum(macs.values()) == 614_461_824


def test_card_model_totals_in_both_conventions():
    from analysis.tables import flops_table
    from cnn.models.architectures import build_cnn

    model = build_cnn(46)
    nodes = walk(model)
    table = flops_table(nodes, [layer_cost(node) for node in nodes])
    macs = 614_461_824
    bias = 254 * 254 * 32 + 125 * 125 * 64 + 60 * 60 * 128 + 46
    relu_softmax = 254 * 254 * 32 + 125 * 125 * 64 + 60 * 60 * 128 + 46
    pools_standard = (127 * 127 * 32 + 62 * 62 * 64 + 30 * 30 * 128) * 3
    pools_profiler = (127 * 127 * 32 + 62 * 62 * 64 + 30 * 30 * 128) * 4
    rescale = 256 * 256 * 3
    assert table.totals["params"] == model.count_params() == 5_392_494
    assert table.totals["flops_standard"] == 2 * macs + bias + relu_softmax + pools_standard + rescale
    # the card's network without the in-model Rescaling is the issue's 1,235,958,612; Rescaling adds x*s + 0
    profiler_card = 2 * macs + bias + pools_profiler + 5 * 46
    assert profiler_card == 1_235_958_612
    assert table.totals["flops_tf_profiler"] == profiler_card + 2 * rescale
    assert table.totals["training_step_flops_estimate"] == 3 * table.totals["flops_standard"]


def test_nested_models_are_flattened_and_shared_layers_counted_once():
    inner = keras.Sequential([keras.Input((8, 8, 4)), L.Conv2D(4, 3, padding="same", name="c"),
                              L.BatchNormalization(name="bn")], name="block")
    inputs = keras.Input((8, 8, 4))
    x = inner(inner(inputs))
    model = keras.Model(inputs, L.Add(name="add")([x, inputs]))
    nodes = walk(model)
    assert [node.name for node in nodes[1:]] == ["block/c", "block/bn", "block#2/c", "block#2/bn", "add"]
    assert nodes[5].inputs == ["block#2/bn", nodes[0].name]
    from analysis.tables import flops_table

    table = flops_table(nodes, [layer_cost(node) for node in nodes])
    assert table.totals["params"] == model.count_params()
    conv_macs = 8 * 8 * 4 * 3 * 3 * 4
    assert table.totals["macs"] == 2 * conv_macs


def test_unknown_layer_counts_zero_and_is_flagged():
    cost = last_cost(single(L.UnitNormalization(), (8, 8, 4)))
    assert cost == type(cost)(0, 0, 0, known=False)
