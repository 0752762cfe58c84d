"""What every command shares: the user-error type, atomic writers, the command wrapper, the labels-CSV schema.

Nothing here imports TensorFlow, pandas or numpy at import time, so `make-labels` and every `--help` stay fast.
"""
