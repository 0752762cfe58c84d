"""Import TensorFlow on demand and without its start-up noise, so a command's stderr holds only its own lines."""
import functools
import importlib.util
import os
import sys


@functools.cache
def tensorflow_installed():
    """Whether TensorFlow can be imported here (Keras's JAX backend trains without it)."""
    return importlib.util.find_spec("tensorflow") is not None


BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}  # KERAS_BACKEND -> the module it needs


def check_keras_backend():
    """Refuse a KERAS_BACKEND that Keras cannot load here (a typo, or torch when it is not installed) in one line,
    before Keras's own 40-line traceback."""
    from common.errors import UsageError

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    module = BACKENDS.get(backend)
    if module is None:
        raise UsageError(f"KERAS_BACKEND={backend!r} is not a backend this project runs on; use "
                         f"{' or '.join(BACKENDS)} (or unset it for tensorflow)")
    if importlib.util.find_spec(module) is None:
        raise UsageError(f"KERAS_BACKEND={backend} needs the {module} package, which is not installed; install it "
                         f"or unset KERAS_BACKEND")


def quiet_backend():
    """Check KERAS_BACKEND, then import TensorFlow quietly where it is installed (Keras imports it on any backend
    when it can), so that its start-up notices never reach a command's stderr."""
    check_keras_backend()
    if tensorflow_installed():
        quiet_tensorflow()


def quiet_tensorflow():
    """Import and return tensorflow with its C++ start-up notices silenced.

    TF 2.21 logs oneDNN notices through absl before `TF_CPP_MIN_LOG_LEVEL` is read, so the import runs
    with file descriptor 2 pointed at /dev/null; Python errors still surface, since the exception is
    raised after stderr is restored. `TF_CPP_MIN_LOG_LEVEL=0` in the environment keeps every message.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        import tensorflow as tf

        return tf
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tf
