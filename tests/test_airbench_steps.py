"""airbench's steps beyond --whiten: --dirac starts the later convolutions as identities, --lookahead's slow weights
follow the closed form, and --bias-lr stretches exactly the BatchNormalization biases' steps."""
import json

import numpy as np
import pytest

from cnn.training.tricks.dirac import identity_init
from cnn.training.tricks.lookahead import parse_lookahead
from conftest import TINY


def test_dirac_makes_the_later_convolutions_pass_their_input_through():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((9, 9, 3)), keras.layers.Conv2D(4, 3, name="a"),
                              keras.layers.Conv2D(6, 3, name="b")])
    first, second = (model.get_layer(n).get_weights() for n in "ab")
    assert identity_init(model) == 1
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 3)).astype("float32")
    a = np.asarray(model.get_layer("a")(x))
    b = np.asarray(model.get_layer("b")(a))
    bias = model.get_layer("b").get_weights()[1]
    np.testing.assert_allclose(b[..., :4] - bias[:4], a[:, 1:-1, 1:-1, :], atol=1e-5)  # the centre of each window
    for got, want in zip(model.get_layer("a").get_weights(), first):  # the first convolution keeps its start
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(model.get_layer("b").get_weights()[0][..., 4:], second[0][..., 4:])


def linear_fit(lookahead, epochs=1, steps=7):
    """SGD (rate 0.1) on a 1-weight model whose loss has gradient 1 at every step, with --lookahead's callback;
    returns the weight after each epoch."""
    import keras

    from cnn.training.tricks.keras_classes import SlowWeights

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=lambda y, p: keras.ops.mean(p, axis=-1))
    x = np.ones((steps, 1), "float32")
    weights = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights.append(float(self.model.get_weights()[0][0, 0]))

    steps = [SlowWeights(*parse_lookahead(lookahead))] if lookahead != "none" else []
    model.fit(x, x, batch_size=1, epochs=epochs, validation_data=(x, x), shuffle=False, verbose=0,
              callbacks=steps + [Record()])
    return weights


@pytest.mark.train
def test_lookahead_moves_the_slow_weights_alpha_of_each_k_step_stretch():
    # 7 steps of -0.1: two stretches of 3 steps and the last step, before validation, each taken half-way
    np.testing.assert_allclose(linear_fit("3:0.5", epochs=2), [-0.35, -0.70], rtol=1e-6)
    np.testing.assert_allclose(linear_fit("none"), [-0.7], rtol=1e-6)  # without it: every step in full


@pytest.mark.train
def test_bias_lr_stretches_only_the_batchnorm_biases_steps():
    import keras

    from cnn.training.tricks.keras_classes import BiasRate

    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = keras.utils.to_categorical(np.arange(8) % 2, 2)
    moved = {}
    for factor in (1.0, 8.0):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d1"),
                                  keras.layers.BatchNormalization(name="bn"),
                                  keras.layers.Dense(2, activation="softmax", name="d2")])
        model.compile(optimizer=keras.optimizers.AdamW(0.01, weight_decay=0.1), loss="categorical_crossentropy")
        start = {v.path.split("/", 1)[1]: np.asarray(v) for v in model.trainable_variables}  # "bn/beta", ...
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[BiasRate(factor)])
        moved[factor] = {v.path.split("/", 1)[1]: np.asarray(v) - start[v.path.split("/", 1)[1]]
                         for v in model.trainable_variables}
    for name, step in moved[1.0].items():
        want = 8 * step if name.endswith("/beta") else step
        assert np.abs(step).max() > 0, name
        np.testing.assert_allclose(moved[8.0][name], want, rtol=1e-5, atol=1e-8, err_msg=name)


def test_the_options_are_checked():
    from cnn.training.options import TrainOptions
    from common.errors import UsageError

    assert parse_lookahead("5:0.5") == (5, 0.5) and parse_lookahead("none") is None
    for bad, message in (("5", "K:ALPHA"), ("0:0.5", "K >= 1"), ("5:1.5", "ALPHA in"), ("a:b", "K:ALPHA")):
        with pytest.raises(UsageError, match=message):
            TrainOptions(lookahead=bad)
    with pytest.raises(UsageError, match="--bias-lr 0"):
        TrainOptions(bias_lr=0)
    with pytest.raises(UsageError, match="--ema"):
        TrainOptions(lookahead="5:0.5", ema=0.99)
    with pytest.raises(UsageError, match="multiworker"):
        TrainOptions(bias_lr=64, strategy="multiworker")
    with pytest.raises(UsageError, match="--dirac"):
        TrainOptions(dirac=True, arch="mobilenetv2")


@pytest.mark.train
def test_a_run_with_all_three_trains_records_them_and_refuses_biases_it_lacks(labelled_folder, monkeypatch):
    from cnn.training.train import train
    from common.errors import UsageError

    monkeypatch.chdir(labelled_folder("airbench"))
    with pytest.raises(UsageError, match="no BatchNormalization"):
        train(out="runs/nobn", bias_lr=64, **TINY)
    assert not (labelled_folder("airbench") / "runs/nobn").exists()
    run, metrics = train(out="runs/a", dirac=True, lookahead="2:0.5", bias_lr=64, batch_norm=True,
                         **dict(TINY, epochs=2))
    options = json.loads((run / "config.json").read_text())["options"]
    assert (options["dirac"], options["lookahead"], options["bias_lr"]) == (True, "2:0.5", 64)
    assert 0 <= metrics["top1"] <= 1
