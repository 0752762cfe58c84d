"""A run whose training accuracy fell to the largest class's share for good is reported as collapsed, with the
epoch it began; a run that learned, or one that never beat the share, is not. During training, an epoch whose
validation accuracy fell to the share is rolled back to the weights and optimizer state it began with."""
import json

import numpy as np
import pandas as pd
import pytest

from cnn.training.collapse import ROLLBACKS, collapse_epochs, collapse_warning, collapsed_at, fell_to_share
from conftest import TINY

SHARE = 0.259  # clothing-dataset-small's largest class (t-shirt) in its train split
FAULT = 6  # the 0-based epoch whose validation sees zeroed weights in the rollback test (its row is epoch 7)


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


def test_an_epoch_falls_to_the_share_only_after_an_earlier_one_beat_it():
    assert fell_to_share(0.14, best_before=0.61, val_share=0.2375)  # the long recipe's seed 0, epoch 26
    assert not fell_to_share(0.30, best_before=0.61, val_share=0.2375)  # low, but not one class for everything
    assert not fell_to_share(0.24, best_before=0.30, val_share=0.2375)  # had not learned yet
    rows = pd.DataFrame({"epoch": range(6), "val_accuracy": [0.24, 0.45, 0.60, 0.14, 0.58, 0.2375]})
    assert collapse_epochs(rows, 0.2375) == [4, 6]  # 1-based, as the log and metrics.json count epochs
    assert collapse_epochs(pd.DataFrame(), 0.2375) == []
    # the 120-epoch long recipe's seed 2 in bfloat16: its best epoch beat the share by 0.199, and then it collapsed
    early = pd.DataFrame({"epoch": range(6), "val_accuracy": [0.2463, 0.3490, 0.4370, 0.3724, 0.2375, 0.2375]})
    assert collapse_epochs(early, 0.2375) == [5, 6]


@pytest.mark.train
def test_a_collapsed_epoch_is_rolled_back_and_training_goes_on(labelled_folder, monkeypatch, capsys):
    """A real run whose weights are zeroed (one class for everything) just before epoch 7's validation: the
    rollback puts back exactly the weights epoch 7 began with, training learns on from them, and the run says so."""
    import keras

    from cnn.training.train import train

    def weights(model):
        return [keras.ops.convert_to_numpy(w.value).copy() for w in model.weights]

    class Probe(keras.callbacks.Callback):
        """Records each epoch's weights at its start and end (after the rollback: the caller's callbacks run last),
        and zeroes them before epoch FAULT + 1's validation."""

        began, ended, steps = {}, {}, {}

        def on_epoch_begin(self, epoch, logs=None):
            self.began[epoch] = weights(self.model)
            self.steps[epoch] = int(self.model.optimizer.iterations.numpy())

        def on_test_begin(self, logs=None):
            if len(self.began) == FAULT + 1 and FAULT not in self.ended:
                for w in self.model.weights:
                    w.assign(np.zeros(w.shape, w.dtype))

        def on_epoch_end(self, epoch, logs=None):
            self.ended[epoch] = weights(self.model)

    monkeypatch.chdir(labelled_folder("collapse"))
    probe = Probe()
    run, metrics = train(out="runs/c", callbacks=[probe], **dict(TINY, image_size=64, epochs=9, patience=10))

    history = pd.read_csv(run / "history.csv")
    val = pd.read_csv("labels.csv").query("split == 'val'")
    share = val["label"].value_counts(normalize=True).max()
    accuracy = history["val_accuracy"].to_numpy()
    assert accuracy[:FAULT].max() >= share + 0.2, "the tiny run did not learn before the fault"
    assert accuracy[FAULT] <= share + 0.02  # the epoch validated the zeroed network ...
    for kept, now in zip(probe.began[FAULT], probe.ended[FAULT]):  # ... and ended with the weights it began with
        np.testing.assert_array_equal(kept, now)
    assert probe.steps[FAULT + 1] > probe.steps[FAULT]  # while the step count (and the schedule) went on
    assert accuracy[FAULT + 1:].min() >= share + 0.2  # and training went on from them
    assert metrics["rolled_back_epochs"] == [FAULT + 1] and metrics["collapsed_at_epoch"] is None
    assert json.loads((run / "metrics.json").read_text())["rolled_back_epochs"] == [FAULT + 1]
    assert f"rollback 1 of at most {ROLLBACKS}" in capsys.readouterr().err
    assert "went back to where that epoch began" in (run / "report.html").read_text()


def test_a_run_the_rollback_gave_up_on_is_reported_collapsed_at_its_last_epoch(capsys):
    from types import SimpleNamespace

    from cnn.training.flat import check_collapse

    labels = pd.DataFrame({"split": ["train"] * 4 + ["val"] * 4, "label": list("aabc") + list("abcd")})
    accuracy = [0.5, 0.8, 0.1, 0.8, 0.1, 0.7, 0.2, 0.8, 0.2]  # val share 0.25: four collapses, the last one final
    rows = pd.DataFrame({"epoch": range(9), "accuracy": [0.9] * 9, "val_accuracy": accuracy})
    options = SimpleNamespace(ema=0, tensorflow_loop=False)
    assert check_collapse(rows, labels, 8, options, "float32") == (9, [3, 5, 7])
    assert "collapsed at epoch 9" in capsys.readouterr().err
    assert check_collapse(rows[:8], labels, 8, options, "float32") == (None, [3, 5, 7])  # all three undone
    assert check_collapse(rows, labels, 8, SimpleNamespace(ema=0.99, tensorflow_loop=False), "float32") == (None, [])
