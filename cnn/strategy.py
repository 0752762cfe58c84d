"""train-cnn --strategy: which tf.distribute strategy trains, and this process's part in it."""
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
