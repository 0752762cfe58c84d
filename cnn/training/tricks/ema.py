"""--ema DECAY: the optimizer keeps an exponential moving average of the weights (Keras's `use_ema`, set by
cnn.training.schedule.make_optimizer), and the average, not the raw weights, is validated, checkpointed and backed
up: its callback swaps it into the model before the run folder's callbacks see the epoch."""
from cnn.training.tricks.base import Trick


class Ema(Trick):
    """--ema DECAY in [0, 1) (0 = off)."""

    option, off, first = "ema", 0.0, True

    def check(self, options):
        self.require(0 <= options.ema < 1, options, "must be in [0, 1) (0 = off; 0.99-0.9999 are usual)")

    def callbacks(self, options, restored):
        from cnn.training.tricks.keras_classes import AveragedWeights

        return [AveragedWeights(resumed=restored)]
