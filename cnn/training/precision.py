"""The numeric precision of training: float32, or Keras's mixed bfloat16/float16 where the hardware helps.

On CPUs with AVX-512 BF16 or AMX, oneDNN runs bfloat16 convolutions and matrix products much faster
than float32 (see benchmarks/bench_training.py); GPUs of compute capability 8.0+ do bfloat16 natively.
"""
import contextlib

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
BF16_CPU_FLAGS = ("avx512_bf16",)  # CPUs on which auto trains in mixed bfloat16
# Intel CPUs with AMX: on one such machine the card's bfloat16 training collapsed at epoch 4 on real photos
# (every later epoch predicting the largest class) while float32, and bfloat16 with AMX off, trained normally;
# a second AMX machine did not reproduce it (README, "bfloat16 or float32"). With the cause unknown, auto
# keeps float32 on them; --precision mixed_bfloat16 still asks for bfloat16.
COLLAPSING_BF16_CPU_FLAGS = ("amx_bf16",)


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU feature flags Linux reports (an empty set where /proc/cpuinfo is unavailable)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def gpu_supports_bfloat16():
    """True when a GPU the Keras backend sees has compute capability 8.0 or more (Ampere and later)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return any(float(getattr(device, "compute_capability", 0)) >= 8.0 for device in jax.devices()
                   if device.platform == "gpu")
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if tuple(capability) >= (8, 0):
            return True
    return False


def resolve_precision(choice="auto", flags=None):
    """The Keras policy name for `choice`; "auto" is mixed_bfloat16 on GPUs of compute capability 8.0+ and on
    CPUs with AVX-512 BF16 but not AMX (see COLLAPSING_BF16_CPU_FLAGS), float32 otherwise."""
    if choice not in PRECISIONS:
        raise ValueError(f"precision {choice!r} is not one of: {', '.join(PRECISIONS)}")
    if choice != "auto":
        return choice
    flags = cpu_flags() if flags is None else set(flags)
    if gpu_supports_bfloat16():
        return "mixed_bfloat16"
    if flags & set(BF16_CPU_FLAGS) and not flags & set(COLLAPSING_BF16_CPU_FLAGS):
        return "mixed_bfloat16"
    return "float32"


def apply_precision(policy_name):
    """Make `policy_name` Keras's global dtype policy for models built from now on; returns the name."""
    import keras

    keras.mixed_precision.set_global_policy(policy_name)
    return policy_name


@contextlib.contextmanager
def precision_policy(precision):
    """Apply the resolved --precision policy for the block, then restore the previous global policy."""
    import keras

    previous = keras.mixed_precision.global_policy().name
    policy = apply_precision(resolve_precision(precision))
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy(previous)
