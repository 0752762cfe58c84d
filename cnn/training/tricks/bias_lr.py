"""--bias-lr F: the BatchNormalization biases (beta) learn F times faster than every other weight (airbench's 64x, one
of its steps to fewer epochs). Keras 3's optimizers have one learning rate for all variables; Adam's and AdamW's
step (decay included) is proportional to the rate, so scaling each step of the biases by F after the optimizer
took it is exactly a per-variable rate of F x the schedule's."""
import math

from cnn.training.tricks.base import Trick
from common.errors import UsageError


class BiasLr(Trick):
    """--bias-lr F: a finite F > 0 (1 = off), on a network with BatchNormalization biases."""

    option, off, with_ema = "bias_lr", 1.0, False

    def check(self, options):
        self.require(math.isfinite(options.bias_lr) and options.bias_lr > 0, options,
                     "must be a finite number > 0 (1 = off)")

    def prepare(self, model, options, train_rows):
        from cnn.training.tricks.keras_classes import bias_variables

        if not bias_variables(model):
            raise UsageError(f"--bias-lr {options.bias_lr}: --arch {options.arch} has no BatchNormalization "
                             "biases; add --batch-norm or drop --bias-lr")

    def callbacks(self, options, restored):
        from cnn.training.tricks.keras_classes import BiasRate

        return [BiasRate(options.bias_lr)]
