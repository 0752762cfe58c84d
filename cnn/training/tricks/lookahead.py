"""--lookahead K:ALPHA (Zhang et al. 2019; one of airbench's steps): slow weights that every K optimizer steps move
ALPHA of the way to the fast weights, which then restart from them. The slow weights are also taken before every
validation, so what is validated, checkpointed and backed up is one set of weights and a resumed run continues
exactly where it stopped."""
from cnn.training.tricks.base import Trick

NONE = "none"


def parse_lookahead(spec):
    """(K, ALPHA) from 'K:ALPHA' (K a whole number >= 1, ALPHA in (0, 1]), or None for 'none'; ValueError
    otherwise."""
    if spec == NONE:
        return None
    try:
        k, alpha = spec.split(":")
        k, alpha = int(k), float(alpha)
    except ValueError:
        raise ValueError("must be K:ALPHA, e.g. 5:0.5, or none") from None
    if k < 1 or not 0 < alpha <= 1:
        raise ValueError("needs K >= 1 steps and ALPHA in (0, 1], e.g. 5:0.5")
    return k, alpha


class Lookahead(Trick):
    """--lookahead K:ALPHA, or none."""

    option, off, with_ema = "lookahead", NONE, False

    def check(self, options):
        try:
            parse_lookahead(options.lookahead)
        except ValueError as error:
            self.require(False, options, str(error))

    def callbacks(self, options, restored):
        from cnn.training.tricks.keras_classes import SlowWeights

        return [SlowWeights(*parse_lookahead(options.lookahead))]
