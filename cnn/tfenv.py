"""Import TensorFlow quietly and on demand, so CLIs start fast and print no C++ log noise."""
import os


def quiet_tensorflow():
    """Import and return tensorflow with its C++ info/warning logs silenced (unless the user set the level)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf
