"""--ema: the weights validated, checkpointed and saved are the closed-form moving average of the raw weights, and
a run killed between epochs resumes to exactly the weights of one that was never killed."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from cnn.training.options import TrainOptions
from conftest import TINY
from interrupt import StopAfterEpoch

DECAY = 0.8
STEPS = 4  # batches per epoch


def tiny_fit(run_dir, epochs, done=None, record=None, kill_after=None):
    """Fit a 2-weight model on fixed data with train-cnn's optimizer and run-folder callbacks (--ema DECAY);
    returns the model. `record` collects the raw weights after every batch; `kill_after` interrupts (like Ctrl-C)
    at the end of that epoch."""
    import keras

    from cnn.training.callbacks import restores, training_callbacks
    from cnn.training.tricks.keras_classes import AveragedWeights
    from cnn.training.schedule import make_optimizer

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8 * STEPS, 3)).astype("float32")
    y = keras.utils.to_categorical((x[:, 0] > 0).astype(int), 2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    options = dataclasses.replace(TrainOptions(ema=DECAY), lr=0.05, schedule="none", warmup_epochs=0)
    model.compile(optimizer=make_optimizer(options), loss="categorical_crossentropy")
    restored = restores(run_dir)
    callbacks = training_callbacks(run_dir, patience=100, restored=restored, done=done,
                                   first=[AveragedWeights(resumed=restored)])

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            record.append([w.copy() for w in self.model.get_weights()])

    try:
        model.fit(x, y, batch_size=8, epochs=epochs, initial_epoch=done or 0, validation_data=(x, y), shuffle=False,
                  verbose=0, callbacks=callbacks + [StopAfterEpoch(kill_after)] + ([Record()] if record is not None else []))
    except KeyboardInterrupt:
        pass
    return model


def closed_form(raw):
    """Keras's average: the first step's weights, then avg = DECAY * avg + (1 - DECAY) * w after every step."""
    average = [w.copy() for w in raw[0]]
    for weights in raw[1:]:
        average = [DECAY * a + (1 - DECAY) * w for a, w in zip(average, weights)]
    return average


def saved_weights(run_dir):
    from common.keras_model import load_keras_model

    return load_keras_model(run_dir / "model.keras").get_weights()


@pytest.mark.train
def test_the_saved_model_is_the_closed_form_average_of_the_best_epoch(tmp_path):
    raw = []
    model = tiny_fit(tmp_path, epochs=3, record=raw)
    assert len(raw) == 3 * STEPS
    best = int(pd.read_csv(tmp_path / "history.csv")["val_loss"].idxmin())
    expected = closed_form(raw[:(best + 1) * STEPS])
    for got, want in zip(saved_weights(tmp_path), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The average differs from the raw weights it came from (or the test would prove nothing).
    assert not np.allclose(expected[0], raw[(best + 1) * STEPS - 1][0], atol=1e-4)
    # At the end of fit the model in memory holds the best epoch's average too (early stopping restores it).
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.train
def test_a_run_resumed_from_its_backup_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    raw_whole = []
    tiny_fit(whole, epochs=4, record=raw_whole)
    tiny_fit(cut, epochs=4, kill_after=1)  # killed after epoch 2, its backup written
    raw_rest = []
    tiny_fit(cut, epochs=4, done=2, record=raw_rest)  # a new process: fresh model and optimizer, then the backup
    # Training continued from the raw weights, not from the average the backup holds in the model.
    for got, want in zip(raw_rest[0], raw_whole[2 * STEPS]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(saved_weights(cut), saved_weights(whole)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.train
def test_ema_is_checked_and_recorded(workdir_ema):
    from cnn.training.options import TrainOptions as Options
    from common.errors import UsageError

    with pytest.raises(UsageError, match="--ema 1.0"):
        Options(ema=1.0)
    with pytest.raises(UsageError, match="multiworker"):
        Options(ema=0.99, strategy="multiworker")
    from cnn.training.train import train

    run_dir, metrics = train(out="runs/ema", ema=0.9, **dict(TINY, epochs=2))
    assert json.loads((run_dir / "config.json").read_text())["options"]["ema"] == 0.9
    assert metrics["top1"] >= 0


@pytest.fixture
def workdir_ema(labelled_folder, monkeypatch):
    folder = labelled_folder("ema")
    monkeypatch.chdir(folder)
    return folder
