"""The one-line refusal of an option's value, shared by TrainOptions and the tricks that check their own options."""
from common.errors import UsageError


def flag(name):
    """The command-line flag of an option: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


def require(ok, name, value, rule):
    """Raise the one-line UsageError for option `name` unless `ok`."""
    if not ok:
        raise UsageError(f"{flag(name)} {value}: {rule}")
