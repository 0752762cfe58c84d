"""Precision resolution by a table of CPU flags and GPUs, and float32 outputs under a mixed policy."""
import numpy as np
import pytest

from cnn.models.architectures import build_cnn
from cnn.training import precision
from cnn.training.precision import apply_precision, cpu_flags, resolve_precision

AVX512 = {"fpu", "sse2", "avx2", "fma", "avx512f"}
AMX = {"amx_bf16", "amx_tile", "amx_int8"}

# What --precision auto picks: (the CPU's /proc/cpuinfo flags, a GPU of compute capability 8.0+ visible) -> policy.
AUTO = [
    (set(), False, "float32"),  # no /proc/cpuinfo
    ({"fpu", "sse2", "avx2", "fma"}, False, "float32"),  # AVX2 only
    (AVX512, False, "float32"),  # AVX-512 without BF16
    (AVX512 | {"avx512_bf16"}, False, "mixed_bfloat16"),  # Cooper Lake, Zen 4: AVX-512 BF16
    (AVX512 | {"avx512_bf16"} | AMX, False, "float32"),  # Sapphire Rapids, AMX: the bfloat16 collapse
    (AVX512 | AMX, False, "float32"),  # AMX flags without AVX-512 BF16
    (set(), True, "mixed_bfloat16"),  # an Ampere-or-later GPU, whatever the CPU
    ({"fpu", "sse2", "avx2", "fma"}, True, "mixed_bfloat16"),
    (AVX512 | {"avx512_bf16"} | AMX, True, "mixed_bfloat16"),  # the GPU trains, not the AMX CPU
]


@pytest.fixture
def restore_policy():
    import keras

    before = keras.mixed_precision.global_policy().name
    yield
    keras.mixed_precision.set_global_policy(before)


@pytest.mark.parametrize("flags, gpu, expected", AUTO)
def test_auto_by_cpu_flags_and_gpu(flags, gpu, expected, monkeypatch):
    monkeypatch.setattr(precision, "gpu_supports_bfloat16", lambda: gpu)
    assert resolve_precision("auto", flags=flags) == expected
    monkeypatch.setattr(precision, "cpu_flags", lambda *args: set(flags))  # as read from /proc/cpuinfo
    assert resolve_precision("auto") == resolve_precision() == expected


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
