"""The analytic receptive field agrees with the one measured by gradients (positive weights, centre unit)."""
import pytest

from common.tfenv import quiet_tensorflow

quiet_tensorflow()
import keras  # noqa: E402
from keras import layers as L  # noqa: E402

from analysis.empirical import analytic_bounds, measure_fields  # noqa: E402
from analysis.graph import walk  # noqa: E402
from analysis.receptive import receptive_fields  # noqa: E402


def measure(model):
    """(nodes, fields, measured, predicted) for every layer of `model`."""
    nodes = walk(model)
    fields = receptive_fields(nodes)
    measured = measure_fields(nodes, fields)
    return nodes, fields, measured, [analytic_bounds(node, fld) for node, fld in zip(nodes, fields)]


def assert_agree(model):
    """Measured bounds equal the analytic ones; for a worst-case (approximate) field, lie within them."""
    nodes, fields, measured, predicted = measure(model)
    checked = [(node.name, m, p) for node, m, p, f in zip(nodes, measured, predicted, fields)
               if m is not None and not f.approximate]
    assert len(checked) == len(nodes) - 1 - sum(f.approximate for f in fields)  # all but the input are measured
    assert [(name, m) for name, m, _ in checked] == [(name, p) for name, _, p in checked]
    for m, p, f in zip(measured, predicted, fields):
        if f.approximate:
            assert all(pl <= ml and mh <= ph for (ml, mh), (pl, ph) in zip(m, p))


def test_card_model_measured_sizes():
    from cnn.models.architectures import build_cnn

    nodes, _, measured, _ = measure(build_cnn(46))
    sizes = {node.name: m[0][1] - m[0][0] + 1 for node, m in zip(nodes, measured) if m is not None}
    assert [sizes[name] for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3")] == [3, 4, 8, 10, 18, 22]
    # Flatten + Dense depend on every pixel up to 253 (254 and 255 fall outside every pool3 field)
    assert measured[-1] == ((0, 253), (0, 253))
    assert_agree(build_cnn(46, input_shape=(64, 64, 3)))


def strided_dilated_same():
    inputs = keras.Input((40, 40, 3))
    x = L.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
    x = L.Conv2D(4, 3, dilation_rate=2, padding="same")(x)
    x = L.BatchNormalization()(x)
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    x = L.SeparableConv2D(4, 3, strides=2)(L.Cropping2D(((0, 1), (2, 1)))(L.ZeroPadding2D(((1, 2), (3, 0)))(x)))
    x = L.DepthwiseConv2D((3, 5), padding="same")(x)
    return keras.Model(inputs, L.GlobalMaxPooling2D()(x), name="strided_dilated_same")


def residual_branches():
    inputs = keras.Input((33, 33, 2))
    stem = L.Conv2D(4, 3, strides=2)(inputs)
    a = L.Conv2D(4, 3, padding="same", dilation_rate=3)(stem)
    b = L.Conv2D(4, (5, 1), padding="same")(stem)
    x = L.Add()([stem, a, b])
    shifted = L.ZeroPadding2D(((0, 2), (1, 1)))(L.Conv2D(4, 3)(x))  # a misaligned branch
    x = L.Multiply()([x, shifted])
    x = L.Concatenate()([x, L.AveragePooling2D(1)(x)])
    x = L.MaxPooling2D(2)(x)
    return keras.Model(inputs, L.Dense(3)(L.Flatten()(x)), name="residual_branches")


def nested_and_1d():
    block = keras.Sequential([keras.Input((30, 2)), L.Conv1D(2, 3, dilation_rate=2, padding="causal"),
                              L.MaxPooling1D(2)], name="block")
    inputs = keras.Input((30, 2))
    x = L.Conv1D(2, 4, strides=2, padding="same")(block(inputs))
    return keras.Model(inputs, L.GlobalAveragePooling1D()(x), name="nested_and_1d")


def upsampling_and_layer_norm():
    inputs = keras.Input((20, 20, 2))
    x = L.UpSampling2D(2)(L.Conv2D(3, 3, strides=2)(inputs))
    x = L.LayerNormalization()(L.Conv2D(3, 3)(x))
    x = L.UpSampling2D((2, 3), interpolation="bilinear")(x)
    return keras.Model(inputs, L.Conv2D(2, 3)(x), name="upsampling_and_layer_norm")


@pytest.mark.parametrize("build", [strided_dilated_same, residual_branches, nested_and_1d, upsampling_and_layer_norm])
def test_analytic_and_measured_agree(build):
    assert_agree(build())


def test_keras_application_agrees():
    assert_agree(keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=4))


def test_misaligned_merge_is_measured_as_the_union():
    model = residual_branches()
    nodes, fields, measured, _ = measure(model)
    multiply = next(i for i, node in enumerate(nodes) if node.kind == "Multiply")
    assert fields[multiply].note.startswith("branches misaligned")
    stem_size = 3
    assert measured[multiply][0][1] - measured[multiply][0][0] + 1 > stem_size


def test_vector_input_is_global_with_nothing_to_measure():
    inputs = keras.Input((10,))
    nodes, fields, measured, _ = measure(keras.Model(inputs, L.Dense(3)(L.Dense(5)(inputs))))
    assert all(fld.is_global for fld in fields) and measured == [None] * 3
