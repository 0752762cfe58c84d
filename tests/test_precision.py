"""Precision resolution from the real CPU flags, and float32 outputs under a mixed policy."""
import numpy as np
import pytest

from cnn.models.architectures import build_cnn
from cnn.training.precision import apply_precision, cpu_flags, resolve_precision


def bf16_hardware():
    """Independent reading of /proc/cpuinfo (and TF's GPU list) for bfloat16 support."""
    import tensorflow as tf

    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        text = ""
    flags = {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split()}
    cpu = "avx512_bf16" in flags and "amx_bf16" not in flags  # AMX: auto keeps float32 (a collapse was seen)
    gpu = any(tuple(tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0))) >= (8, 0)
              for g in tf.config.list_physical_devices("GPU"))
    return cpu or gpu


@pytest.fixture
def restore_policy():
    import keras

    before = keras.mixed_precision.global_policy().name
    yield
    keras.mixed_precision.set_global_policy(before)


def test_auto_follows_the_hardware():
    expected = "mixed_bfloat16" if bf16_hardware() else "float32"
    assert resolve_precision("auto") == resolve_precision() == expected


@pytest.mark.parametrize("flags, expected", [
    ({"avx512f", "avx512_bf16"}, "mixed_bfloat16"),
    ({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}, "float32"),  # AMX: the bfloat16 collapse
    ({"avx2", "fma"}, "float32"),
])
def test_auto_on_cpus_by_their_flags(flags, expected):
    from cnn.training.precision import gpu_supports_bfloat16

    if gpu_supports_bfloat16():
        pytest.skip("a bfloat16 GPU is visible: auto picks it whatever the CPU")
    assert resolve_precision("auto", flags=flags) == expected


@pytest.mark.parametrize("choice", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_explicit_choices_pass_through(choice):
    assert resolve_precision(choice) == choice


def test_an_invalid_choice_is_refused():
    with pytest.raises(ValueError, match="'bf16' is not one of: auto, float32"):
        resolve_precision("bf16")


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\nbogomips\t: 1\n")
    assert cpu_flags(str(info)) == {"fpu", "sse2", "avx512f", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "absent")) == set()


def test_mixed_bfloat16_computes_in_bfloat16_and_outputs_float32(restore_policy):
    import keras

    assert apply_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    model = build_cnn(3, input_shape=(24, 24, 3), filters=(4, 8))
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    assert model.get_layer("conv1").kernel.dtype == "float32"  # master weights stay float32
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (8, 24, 24, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(8) % 3]
    loss = model.train_on_batch(x, y)
    out = model(x)
    assert out.dtype == "float32" and np.isfinite(loss)
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)


def test_float32_policy_keeps_everything_float32(restore_policy):
    apply_precision("float32")
    model = build_cnn(3, input_shape=(24, 24, 3), filters=(4,))
    assert model.get_layer("conv1").compute_dtype == "float32"
    assert model(np.zeros((1, 24, 24, 3), "float32")).dtype == "float32"
