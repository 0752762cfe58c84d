"""Every keras.applications architecture is covered: no layer type without a rule, and our tf-profiler total
equals TensorFlow's profiler exactly (weights=None, the smallest input each accepts, 10 classes)."""
import inspect

import pytest

from common.tfenv import quiet_tensorflow

quiet_tensorflow()
import keras  # noqa: E402

from analysis.analyze import analyze  # noqa: E402
from analysis.graph import walk  # noqa: E402
from analysis.receptive import receptive_fields  # noqa: E402
from test_analysis_profiler import our_profiler_flops, profiler_flops  # noqa: E402

# Smallest input side each family accepts (32 for the rest).
MIN_SIZE = {"InceptionResNetV2": 75, "InceptionV3": 75, "Xception": 71}
# Profiled in seconds on 2 CPU cores; the rest take up to a minute each and run under `make test-slow`.
FAST = {"MobileNet", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "EfficientNetV2B0", "ConvNeXtTiny",
        "VGG16"}
NAMES = sorted(name for name, builder in inspect.getmembers(keras.applications)
               if inspect.isfunction(builder) and name[0].isupper())


def build(name):
    size = MIN_SIZE.get(name, 32)
    return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=10)


def test_the_zoo_is_listed():
    assert len(NAMES) >= 40 and {"ConvNeXtTiny", "InceptionResNetV2", "EfficientNetB7"} <= set(NAMES)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n in FAST else [pytest.mark.slow]) for n in NAMES])
def test_application_is_fully_covered_and_matches_profiler(name):
    keras.backend.clear_session()
    model = build(name)
    _, meta = analyze(model, flops=True, receptive_field=False)
    assert meta["warnings"] == []
    assert all(field.known for field in receptive_fields(walk(model)))
    assert our_profiler_flops(model) == profiler_flops(model)
