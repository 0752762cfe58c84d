"""Analytic receptive fields: per-layer recurrences with expected values written as arithmetic."""
import pytest

from common.tfenv import quiet_tensorflow

quiet_tensorflow()
import keras  # noqa: E402
from keras import layers as L  # noqa: E402

from analysis.graph import walk  # noqa: E402
from analysis.keras_internals import application_layers  # noqa: E402
from analysis.receptive import receptive_fields  # noqa: E402


def fields_of(model):
    nodes = walk(model)
    return dict(zip((node.name for node in nodes), receptive_fields(nodes)))


def last_field(layer, shape):
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer(inputs))
    return list(fields_of(model).values())[-1]


# (layer, input shape, size, jump, centre of the first unit): r = 1 + (k_eff-1), j = s, c = (k_eff-1)/2 - p_left
CASES = [
    (lambda: L.Conv2D(2, 3), (9, 9, 1), (3, 3), (1, 1), (1, 1)),
    # 'same', stride 2 on 8: total pad (4-1)*2+3-8 = 1 -> left 0 (TensorFlow pads the end first)
    (lambda: L.Conv2D(2, 3, strides=2, padding="same"), (8, 8, 1), (3, 3), (2, 2), (1, 1)),
    # on 9: total pad (5-1)*2+3-9 = 2 -> left 1
    (lambda: L.Conv2D(2, 3, strides=2, padding="same"), (9, 9, 1), (3, 3), (2, 2), (0, 0)),
    # dilation 2: k_eff = 2*(3-1)+1 = 5; 'same' on 9 with stride 1: left pad (5-1)/2 = 2
    (lambda: L.Conv2D(2, 3, dilation_rate=2), (9, 9, 1), (5, 5), (1, 1), (2, 2)),
    (lambda: L.Conv2D(2, 3, dilation_rate=(2, 3), padding="same"), (9, 9, 1), (5, 7), (1, 1), (0, 0)),
    (lambda: L.Conv2D(2, (5, 1), strides=(1, 3)), (9, 9, 1), (5, 1), (1, 3), (2, 0)),
    (lambda: L.DepthwiseConv2D(3, strides=2), (9, 9, 1), (3, 3), (2, 2), (1, 1)),
    (lambda: L.SeparableConv2D(2, 5), (9, 9, 1), (5, 5), (1, 1), (2, 2)),
    (lambda: L.MaxPooling2D(2), (9, 9, 1), (2, 2), (2, 2), (0.5, 0.5)),
    (lambda: L.AveragePooling2D(3, strides=2, padding="same"), (9, 9, 1), (3, 3), (2, 2), (0, 0)),
    (lambda: L.ZeroPadding2D(((1, 2), (3, 0))), (9, 9, 1), (1, 1), (1, 1), (-1, -3)),
    (lambda: L.Cropping2D(((2, 0), (1, 1))), (9, 9, 1), (1, 1), (1, 1), (2, 1)),
    (lambda: L.BatchNormalization(), (9, 9, 1), (1, 1), (1, 1), (0, 0)),
    (lambda: L.LayerNormalization(), (9, 9, 2), (1, 1), (1, 1), (0, 0)),  # over the channels: pointwise
    (lambda: L.RMSNormalization(), (9, 9, 2), (1, 1), (1, 1), (0, 0)),
    (lambda: application_layers()[0](1e-6, 2), (9, 9, 2), (1, 1), (1, 1), (0, 0)),  # LayerScale
    # upsampling by 2: units half a pixel apart, unit i centred near (i - 1/2)/2, off by up to 1/4 either way,
    # so 1/2 is added to the size; nearest copies one pixel, bilinear blends two per axis (one more)
    (lambda: L.UpSampling2D(2), (9, 9, 1), (1.5, 1.5), (0.5, 0.5), (-0.25, -0.25)),
    (lambda: L.UpSampling2D(2, interpolation="bilinear"), (9, 9, 1), (2.5, 2.5), (0.5, 0.5), (-0.25, -0.25)),
    (lambda: L.Dense(3), (9, 9, 1), (1, 1), (1, 1), (0, 0)),
    # causal Conv1D, k_eff 5: all padding on the left, so the first unit is centred 4-2 = 2 pixels before 0
    (lambda: L.Conv1D(2, 3, dilation_rate=2, padding="causal"), (12, 1), (5,), (1,), (-2,)),
    (lambda: L.Conv1D(2, 4, strides=3), (12, 1), (4,), (3,), (1.5,)),
    (lambda: L.MaxPooling1D(3), (12, 1), (3,), (3,), (1,)),
]


@pytest.mark.parametrize("make, shape, size, jump, start", CASES,
                         ids=[f"{c[0]().__class__.__name__}-{i}" for i, c in enumerate(CASES)])
def test_layer_recurrences(make, shape, size, jump, start):
    field = last_field(make(), shape)
    assert (field.size, field.jump, field.start) == (size, jump, start)
    assert field.padding == tuple((r - 1) / 2 - c for r, c in zip(size, start))
    assert not field.is_global


@pytest.mark.parametrize("make", [L.Flatten, L.GlobalAveragePooling2D, L.GlobalMaxPooling2D,
                                  lambda: L.GroupNormalization(groups=1), lambda: L.LayerNormalization(axis=(1, 2))])
def test_flatten_and_global_pooling_are_global_and_stay_global(make):
    inputs = keras.Input((9, 9, 1))
    model = keras.Model(inputs, L.Dense(2)(make()(L.Conv2D(2, 3)(inputs))))
    fields = list(fields_of(model).values())
    assert [f.is_global for f in fields] == [False, False, True, True]
    assert fields[-1].coverage == ((0, 8), (0, 8))


def test_card_model_fields():
    from cnn.models.architectures import build_cnn

    fields = fields_of(build_cnn(46))
    # r grows by (k-1)*jump: conv 3 -> +2j, pool 2 -> +1j; jump doubles at each pool
    sizes = {name: fields[name].size[0] for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3")}
    assert sizes == {"conv1": 1 + 2, "pool1": 3 + 1, "conv2": 4 + 2 * 2, "pool2": 8 + 1 * 2, "conv3": 10 + 2 * 4,
                     "pool3": 18 + 1 * 4}
    assert list(sizes.values()) == [3, 4, 8, 10, 18, 22]
    assert fields["pool3"].jump == (8, 8)
    assert fields["flatten"].is_global and fields["predictions"].is_global
    # 30 pool3 units 8 px apart, first centred at 10.5 with half-width 10.5: pixels 0..10.5+29*8+10.5 = 253
    assert fields["predictions"].coverage == ((0, 253), (0, 253))


def test_misaligned_branches_take_the_union_and_say_so():
    inputs = keras.Input((9, 9, 1))
    shifted = L.ZeroPadding2D(((0, 1), (0, 1)))(L.Cropping2D(((1, 0), (1, 0)))(inputs))
    fields = list(fields_of(keras.Model(inputs, L.Add()([shifted, inputs]))).values())
    merged = fields[-1]
    # branch centres 1 and 0, each 1 pixel wide: union spans pixels 0..1
    assert merged.size == (2, 2) and merged.start == (0.5, 0.5)
    assert merged.note.startswith("branches misaligned")


def test_aligned_residual_branch_keeps_the_larger_field():
    inputs = keras.Input((9, 9, 1))
    x = L.Conv2D(1, 3, padding="same")(L.Conv2D(1, 3, padding="same")(inputs))
    merged = list(fields_of(keras.Model(inputs, L.Add()([x, inputs]))).values())[-1]
    assert merged.size == (5, 5) and merged.start == (0, 0) and merged.note == ""


def test_nested_model_fields_use_inner_layers():
    inner = keras.Sequential([keras.Input((16, 16, 1)), L.Conv2D(1, 3, name="conv"), L.MaxPooling2D(2, name="pool")],
                             name="stem")
    inputs = keras.Input((16, 16, 1))
    fields = fields_of(keras.Model(inputs, L.Conv2D(1, 3)(inner(inputs))))
    assert fields["stem/pool"].size == (4, 4)
    assert list(fields.values())[-1].size == (4 + 2 * 2, 4 + 2 * 2)


def test_unknown_layer_is_flagged_and_passes_the_field_through():
    inputs = keras.Input((8, 8, 1))
    fields = list(fields_of(keras.Model(inputs, L.UnitNormalization()(L.Conv2D(1, 3)(inputs)))).values())
    assert not fields[-1].known and "UnitNormalization" in fields[-1].note
    assert fields[-1].size == (3, 3)


def test_attention_is_global():
    """Every position attends to every other: one attention layer sees the whole sequence."""
    inputs = keras.Input((12, 2))
    x = L.Conv1D(4, 3)(inputs)
    fields = list(fields_of(keras.Model(inputs, L.MultiHeadAttention(num_heads=1, key_dim=2)(x, x))).values())
    assert [f.is_global for f in fields] == [False, False, True] and fields[-1].coverage == ((0, 11),)
