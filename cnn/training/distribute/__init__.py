"""cnn.training.distribute: how a run spreads over devices and machines (--strategy): the strategy and this
process's role (strategy.py), TensorFlow's multiworker loop (multiworker.py), JAX's processes (keras_distribution.py)."""
