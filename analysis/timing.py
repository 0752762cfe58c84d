"""Measured time per layer: each layer called on its real input tensors (the values the whole model computes
for one random batch), compiled with tf.function, timed after a warm-up as the median of repeated calls; the
whole model timed in the same rounds (so both see the same load on a shared machine), and a large float32
matmul for the machine's reference peak."""
import contextlib
import statistics
import time
from dataclasses import dataclass, field

from analysis.graph import arguments, run
from analysis.keras_internals import call_with
from common.tfenv import quiet_tensorflow

WARMUP = 2  # untimed calls first: tracing, memory allocation, caches
PEAK_SIZE = {"CPU": 2048, "GPU": 8192}  # square matmul side: long enough to reach the device's speed
PEAK_REPEATS = 5
WHOLE = ""  # the whole model's key among the timed steps (no layer has an empty name)
METHOD = ("each layer called on its real input tensors (from one layer-by-layer pass of the whole model on "
          "random pixels 0-255), compiled with tf.function; {warmup} untimed calls, then {repeats} rounds that "
          "time every layer and the whole model once each (so all see the same machine load); median per layer")


@dataclass(frozen=True)
class TimingOptions:
    """What `analyze-model --timing` measures: images per call, timed calls, inference or forward + backward."""

    batch_size: int = 32
    repeats: int = 10
    training_step: bool = False


@dataclass
class Timings:
    """Median seconds per call for each timed node (by name) and for the whole model; the matmul peak."""

    layers: dict = field(default_factory=dict)
    whole: float = 0.0
    peak_gflops: float = 0.0
    peak_dtype: str = "float32"
    device: str = ""
    method: str = ""


def measure_times(model, nodes, options):
    """Time every layer call of `nodes` (inputs aside) and the whole model on one random batch."""
    tf = quiet_tensorflow()
    from analysis.erf_inputs import random_pixels

    batch = tf.constant(random_pixels(tuple(model.inputs[0].shape[1:]), options.batch_size, 0),
                        dtype=model.inputs[0].dtype)
    values = run(nodes, batch)
    steps = {node.name: _step(tf, _layer_call(node.tensor), arguments(node, values), options.training_step)
             for node in nodes if node.inputs}
    steps[WHOLE] = _step(tf, lambda args: model(args[id(model.inputs[0])], training=False),
                         {id(model.inputs[0]): batch}, options.training_step)
    with _quiet_retracing(tf):  # one tf.function per layer is the point here, not a mistake to warn about
        seconds = median_times(tf, steps, options.repeats)
    timings = Timings(whole=seconds.pop(WHOLE), layers=seconds, device=_device(tf),
                      method=METHOD.format(repeats=options.repeats, warmup=WARMUP))
    timings.peak_dtype = compute_dtype(model)
    timings.peak_gflops = matmul_peak(tf, timings.peak_dtype)
    return timings


def compute_dtype(model):
    """The precision the model computes in (bfloat16 under mixed_bfloat16): the first weighted layer's."""
    return next((layer.compute_dtype for layer in model.layers if layer.weights), "float32")


@contextlib.contextmanager
def _quiet_retracing(tf):
    """Silence TensorFlow's Python warnings (the 'triggered tf.function retracing' one) for the block."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def _layer_call(tensor):
    """The call that produced `tensor`, as a function of its inputs' values (a closure: tf.function traces
    arguments, not captured objects)."""
    return lambda args: call_with(tensor, args)


def _step(tf, call, values, training_step):
    """A compiled call on `values`; with `training_step`, forward then gradients w.r.t. inputs and weights."""
    def forward_backward(args):
        with tf.GradientTape() as tape:
            tape.watch(list(args.values()))
            output = call(args)
        sources = list(args.values()) + list(tape.watched_variables())
        return tape.gradient(output, sources, unconnected_gradients="zero")

    compiled = tf.function(forward_backward if training_step else call)
    return lambda: compiled(values)


def median_times(tf, steps, repeats):
    """Median wall-clock seconds of each step (a dict of callables) after WARMUP untimed calls, over `repeats`
    rounds that call every step once, each call waited for."""
    for step in steps.values():
        for _ in range(WARMUP):
            step()
    times = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            tf.test.experimental.sync_devices()
            start = time.perf_counter()
            step()
            tf.test.experimental.sync_devices()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def matmul_peak(tf, dtype="float32"):
    """GFLOP/s of a square matmul (2*n^3 FLOPs) in `dtype` on the default device: the machine's reference peak."""
    n = PEAK_SIZE["GPU" if tf.config.list_logical_devices("GPU") else "CPU"]
    a = tf.cast(tf.random.stateless_uniform((n, n), seed=(0, 1)), dtype)
    b = tf.cast(tf.random.stateless_uniform((n, n), seed=(0, 2)), dtype)
    matmul = tf.function(lambda: tf.matmul(a, b))
    return 2 * n ** 3 / median_times(tf, {WHOLE: matmul}, PEAK_REPEATS)[WHOLE] / 1e9


def _device(tf):
    """The device the timings ran on, e.g. 'GPU:0 (NVIDIA H100 80GB HBM3)' or 'CPU'."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "")
    return f"GPU:0 ({name})" if name else "GPU:0"
