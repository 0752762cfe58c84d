"""Our `tf-profiler` convention equals what TensorFlow's own profiler counts (tf.compat.v1.profiler
float_operation on the frozen inference graph, batch 1): the profiler is the check, never the source."""
import pytest

from common.tfenv import quiet_tensorflow

tf = quiet_tensorflow()
import keras  # noqa: E402
from keras import layers as L  # noqa: E402
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2  # noqa: E402

from analysis.flops import model_costs  # noqa: E402
from analysis.graph import walk  # noqa: E402


def profiler_flops(model):
    """Total float operations TensorFlow's profiler reports for one image through `model`."""
    spec = tf.TensorSpec((1,) + tuple(model.inputs[0].shape[1:]), model.inputs[0].dtype)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    graph = convert_variables_to_constants_v2(function).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op",
                                            options=options)
    return profile.total_float_ops


def our_profiler_flops(model):
    return sum(cost.tf_flops for cost in model_costs(walk(model)))


def test_card_model_matches_profiler_and_issue_figure():
    from cnn.models.architectures import build_cnn

    model = build_cnn(46)
    assert our_profiler_flops(model) == profiler_flops(model)
    # the card's network took images already scaled to [0, 1]: the same layers without Rescaling
    inputs = keras.Input((256, 256, 3))
    x = inputs
    for filters in (32, 64, 128):
        x = L.MaxPooling2D(2)(L.Conv2D(filters, 3, activation="relu")(x))
    card = keras.Model(inputs, L.Dense(46, activation="softmax")(L.Flatten()(x)))
    assert profiler_flops(card) == 1_235_958_612
    assert our_profiler_flops(card) == 1_235_958_612


@pytest.mark.parametrize("name, size", [("Xception", 71), ("ResNet50", 32), ("MobileNetV2", 32)])
def test_keras_applications_match_profiler(name, size):
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=10)
    assert our_profiler_flops(model) == profiler_flops(model)


def _branchy():
    """Dilation, transposed/separable/depthwise convs, 1-D convs, merges and a nested block at once.
    (Grouped convs are checked alone: the profiler loses the shapes of what follows them.)"""
    inputs = keras.Input((17, 17, 4))
    block = keras.Sequential([keras.Input((17, 17, 8)), L.Conv2D(8, 3, padding="same"),
                              L.BatchNormalization(center=False), L.Activation("gelu")], name="block")
    a = L.Conv2D(8, 3, dilation_rate=2, padding="same", activation="swish")(inputs)
    b = L.SeparableConv2D(8, 3, padding="same", dilation_rate=3)(inputs)
    x = L.Add()([block(a), b, a])
    x = L.Concatenate()([x, L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(inputs)])
    x = L.Multiply()([x, L.Conv2DTranspose(16, 3, strides=2, padding="same")(L.ZeroPadding2D(((1, 0), (1, 0)))(
        L.AveragePooling2D(2)(x)))[:, 1:, 1:]])
    x = L.Average()([L.Conv2DTranspose(16, 3, strides=1, padding="same")(x), x])
    x = L.Normalization(mean=0.5, variance=2.0)(L.Rescaling(0.5, offset=1.0)(x))
    x = L.Reshape((17 * 17, 16))(x)
    x = L.Conv1D(4, 5, dilation_rate=2, padding="causal", activation="relu")(x)
    x = L.GlobalAveragePooling1D()(L.MaxPooling1D(3, padding="same")(x))
    return keras.Model(inputs, L.Dense(3, activation="softmax")(L.Dropout(0.2)(x)), name="branchy")


@pytest.mark.parametrize("make", [lambda: L.Conv2D(8, 3, groups=2), lambda: L.Conv2D(8, 3, dilation_rate=(2, 3)),
                                  lambda: L.Conv2DTranspose(5, 4, strides=3, padding="same"),
                                  lambda: L.BatchNormalization(axis=1), lambda: L.ReLU(threshold=0.5),
                                  lambda: L.LayerNormalization(),
                                  lambda: L.LayerNormalization(axis=(1, 2), scale=False),
                                  lambda: L.RMSNormalization(),
                                  lambda: L.GroupNormalization(groups=2, center=False),
                                  lambda: L.UpSampling2D((2, 3)), lambda: L.UpSampling2D(2, interpolation="bilinear")])
def test_single_layers_match_profiler(make):
    inputs = keras.Input((11, 11, 4))
    model = keras.Model(inputs, make()(inputs))
    assert our_profiler_flops(model) == profiler_flops(model)


@pytest.mark.parametrize("makers", [
    [lambda: L.Activation("gelu"), L.LayerNormalization, L.BatchNormalization, L.Softmax, lambda: L.Conv2D(8, 1),
     L.GlobalAveragePooling2D, lambda: L.Dense(3)],
    [L.LayerNormalization, lambda: L.Dense(16), lambda: L.Activation("gelu"), lambda: L.Dense(8)],  # ConvNeXt's block
    [lambda: L.Normalization(mean=1.0, variance=2.0), lambda: L.DepthwiseConv2D(3), L.BatchNormalization],
    [lambda: L.MaxPooling2D(2), lambda: L.ZeroPadding2D(1), L.Softmax],
    [lambda: L.UpSampling2D(2), lambda: L.GroupNormalization(2), L.Flatten, L.Softmax],
])
def test_layers_after_a_grouped_conv_match_profiler(makers):
    """The profiler cannot see a grouped conv's output shape, nor the shapes computed from it until a layer
    fixes the shape again: those layers count (almost) nothing, and we must say so."""
    inputs = keras.Input((6, 6, 8))
    x = L.Conv2D(8, 3, padding="same", groups=4)(inputs)
    for make in makers:
        x = make()(x)
    model = keras.Model(inputs, x)
    assert our_profiler_flops(model) == profiler_flops(model)


def _attention(mha, cross=False):
    """Self-attention over 5 positions of 4 features; cross: queries of 6 features over 7 values of 3 features."""
    inputs = keras.Input((35, 4))
    if not cross:
        x = inputs[:, :5]
        return keras.Model(inputs, mha(x, x))
    query = L.Dense(6)(inputs[:, :5])
    value = L.Dense(3)(inputs[:, 5:12])
    return keras.Model(inputs, mha(query, value))


@pytest.mark.parametrize("make, cross", [
    (lambda: L.MultiHeadAttention(num_heads=2, key_dim=3), False),
    (lambda: L.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=5, use_bias=False), False),
    (lambda: L.MultiHeadAttention(num_heads=2, key_dim=4, output_shape=7), True),
])
def test_attention_matches_profiler(make, cross):
    model = _attention(make(), cross)
    assert our_profiler_flops(model) == profiler_flops(model)


def test_branching_nested_model_matches_profiler():
    model = _branchy()
    assert our_profiler_flops(model) == profiler_flops(model)
