"""A run whose training accuracy fell to the largest class's share for good is reported as collapsed, with the
epoch it began; a run that learned, or one that never beat the share, is not."""
import pandas as pd

from cnn.training.collapse import collapse_warning, collapsed_at

SHARE = 0.259  # clothing-dataset-small's largest class (t-shirt) in its train split


def history(accuracy):
    return pd.DataFrame({"epoch": range(len(accuracy)), "accuracy": accuracy})


def test_a_collapse_that_lasts_to_the_end_is_found_at_its_first_epoch():
    # the long recipe's seed 1 with --whiten in bfloat16 on an AMX CPU, shortened: 0.91 at epoch 25, then 0.49, then
    # the share for good
    assert collapsed_at(history([0.31, 0.64, 0.80, 0.91, 0.49, 0.259, 0.259, 0.2591]), SHARE) == 6


def test_learning_runs_dips_and_runs_that_never_learned_are_not_collapses():
    assert collapsed_at(history([0.31, 0.64, 0.80, 0.91]), SHARE) is None
    assert collapsed_at(history([0.31, 0.26, 0.70, 0.90]), SHARE) is None  # a dip it recovered from
    assert collapsed_at(history([0.25, 0.26, 0.27, 0.26]), SHARE) is None  # never beat the share: nothing to lose
    assert collapsed_at(history([]), SHARE) is None


def test_the_warning_names_the_way_out():
    assert "--precision float32" in collapse_warning(6, SHARE, 4, "mixed_bfloat16")
    assert "--lr" in collapse_warning(6, SHARE, 4, "float32") and "epoch 6" in collapse_warning(6, SHARE, 4, "float32")
