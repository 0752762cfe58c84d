"""The architectures: parameter counts by hand, and the smallest input each accepts."""
import pytest

from cnn.models.architectures import MIN_IMAGE_SIZE, PRETRAINED, build_model
from common.tfenv import quiet_tensorflow

quiet_tensorflow()


def conv_params(filters, bias):
    """Weights of 3x3 convolutions over RGB then each previous stage's channels."""
    channels = (3,) + tuple(filters[:-1])
    return sum(9 * c * f + (f if bias else 0) for c, f in zip(channels, filters))


def test_card_network_is_the_cards():
    flatten = 30 * 30 * 128
    assert build_model("cnn", 46).count_params() == conv_params((32, 64, 128), True) + flatten * 46 + 46 == 5_392_494


def test_cnn5_sees_6x6_units_and_keeps_the_cards_size():
    filters = (32, 64, 128, 256, 256)
    flatten = 6 * 6 * 256  # 256 -> 254 -> 127 -> 125 -> 62 -> 60 -> 30 -> 28 -> 14 -> 12 -> 6
    expected = conv_params(filters, True) + flatten * 512 + 512 + 512 * 46 + 46
    model = build_model("cnn5", 46)
    assert model.get_layer("flatten").output.shape[1:] == (flatten,)
    assert model.count_params() == expected
    # --batch-norm: BatchNormalization after each convolution (gamma, beta, moving mean and variance per channel),
    # whose beta replaces the convolution's bias
    with_bn = build_model("cnn5", 46, batch_norm=True).count_params()
    assert with_bn == conv_params(filters, False) + 4 * sum(filters) + flatten * 512 + 512 + 512 * 46 + 46


# The keras.applications backbones take seconds each to build twice: one runs here, the rest under test-slow.
@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.slow if a in PRETRAINED and a != "mobilenetv2"
                                               else ()) for a in sorted(MIN_IMAGE_SIZE)])
def test_min_image_size_is_the_smallest_that_builds(arch):
    build_model(arch, 3, (MIN_IMAGE_SIZE[arch],) * 2 + (3,))
    with pytest.raises(ValueError):
        build_model(arch, 3, (MIN_IMAGE_SIZE[arch] - 1,) * 2 + (3,))
