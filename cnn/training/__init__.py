"""cnn.training: the front door (train.py), the engine and the training variants; see docs/architecture.md."""
from common.console import writer

log = writer("train-cnn")  # every training module's summary and warning lines: `train-cnn: ...` on stderr
