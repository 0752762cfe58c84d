"""Training tricks as objects (cnn.training.tricks.base.Trick), one a module. TRICKS is their order in the trainer:
starting weights (whiten, dirac), a check of the built model (bias-lr), wrappers of the fitted model (progressive's
any-size twin, then the teacher's distiller around it), and callbacks (ema's swap before the run folder's; bias-lr's
and lookahead's step edits after it). The refusals that concern several tricks are made here, once."""
from cnn.training.distribute.multiworker import SUPPORTS, UNSUPPORTED
from cnn.training.tricks.bias_lr import BiasLr
from cnn.training.tricks.dirac import Dirac
from cnn.training.tricks.ema import Ema
from cnn.training.tricks.lookahead import Lookahead
from cnn.training.tricks.progressive import Progressive
from cnn.training.tricks.teacher import Teacher
from cnn.training.tricks.whiten import Whiten

TRICKS = (Whiten(), Dirac(), BiasLr(), Ema(), Lookahead(), Progressive(), Teacher())


def active(options):
    """The tricks these TrainOptions turn on, in TRICKS' order."""
    return [trick for trick in TRICKS if trick.on(options)]


def from_recipe(options, name, value):
    """The recipe's `value` of option `name`: a trick the recipe turns on stays off where it cannot apply."""
    trick = next((t for t in TRICKS if t.option == name), None)
    return value if trick is None or value == trick.off or trick.by_recipe(options) else trick.off


def check_tricks(options):
    """Each trick's own checks, then the combinations: a trick whose callbacks edit the weights is refused beside
    --ema, and one that TensorFlow's multiworker loop does not declare it supports is refused there."""
    for trick in TRICKS:
        trick.check(options)
    for trick in active(options):
        trick.require(trick.with_ema or not options.ema, options, "cannot be combined with --ema; drop one of them")
        trick.require(trick.option in SUPPORTS or not options.tensorflow_loop, options, UNSUPPORTED)


def prepare(model, options, train_rows):
    """Let the tricks set a freshly built model's starting weights (in the strategy's scope), or refuse it."""
    for trick in active(options):
        trick.prepare(model, options, train_rows)


def wrapped(model, options, classes):
    """The model to fit: `model` itself, or what the tricks wrap around it, in TRICKS' order."""
    for trick in active(options):
        model = trick.wrap(model, options, classes)
    return model


def trick_callbacks(options, restored, first):
    """The active tricks' Keras callbacks: those that run before the run folder's (`first`), or after them."""
    return [c for trick in active(options) if trick.first == first for c in trick.callbacks(options, restored)]
