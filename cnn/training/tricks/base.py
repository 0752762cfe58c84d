"""A training trick as one object (fastai's callbacks are the model): the option that turns it on, its checks, what
it does to the freshly built model, what wraps the model that is fitted, and its Keras callbacks. The trainer calls
these hooks at fixed points (cnn.training.flat.first_phase, cnn.training.engine.plan_callbacks), so a new trick is
a module in this package and an entry in cnn.training.tricks.TRICKS, not edits across the trainer."""
from cnn.models.architectures import PRETRAINED
from cnn.training.refusal import require


class Trick:
    """One trick, on when its option's value is not `off`; the hooks below do nothing unless a trick overrides them."""

    option = ""  # the TrainOptions field holding the trick's setting
    off = None  # that field's value when the trick is off
    with_ema = True  # False: its callbacks edit the weights, which --ema's swapped weights do not allow for
    first = False  # True: its callbacks run before the run folder's (history, best model, backup), which hold their work

    def on(self, options):
        """Whether these TrainOptions turn the trick on."""
        return getattr(options, self.option) != self.off

    def require(self, ok, options, rule):
        """The one-line refusal of the trick's option unless `ok`."""
        require(ok, self.option, getattr(options, self.option), rule)

    def by_recipe(self, options):
        """Whether a recipe that turns the trick on may do so for these options (asked by name, it is checked)."""
        return True

    def check(self, options):
        """Refuse impossible values of the trick's options (called whether it is on or not, before any work)."""

    def prepare(self, model, options, train_rows):
        """Set the freshly built model's starting weights (in the strategy's scope), or refuse the model."""

    def wrap(self, fitted, options, classes):
        """The model to fit in place of `fitted` (by default `fitted` itself); model.keras keeps the built model."""
        return fitted

    def callbacks(self, options, restored):
        """The trick's Keras callbacks for each fit (`restored`: the fit starts from the run's backup)."""
        return []


class StartingWeights(Trick):
    """A switch that sets a from-scratch network's starting weights (--whiten, --dirac): not a pretrained
    architecture's, and not over the weights --init copies."""

    off = False

    def by_recipe(self, options):
        """A recipe sets the starting weights of a from-scratch network it starts from scratch only."""
        return options.arch not in PRETRAINED and options.init == "none"

    def check(self, options):
        if self.on(options):
            self.require(options.arch not in PRETRAINED, options,
                         f"sets a from-scratch network's starting weights, not {options.arch}'s")
            self.require(options.init == "none", options, "would overwrite the weights --init copies; drop one of them")
