"""--whiten: the first convolution's filters whiten the training images' patches (unit-variance, uncorrelated
responses, each direction with its negation), and the layer stays frozen through training."""
import json

import numpy as np
import pytest

from cnn.training.tricks.whiten import EPS, image_patches, whitening_kernel
from conftest import TINY


def responses(kernel, patches):
    """Each filter's response to each (flattened) patch: the convolution at one position."""
    return patches @ kernel.reshape(patches.shape[1], -1)


def test_the_filters_whiten_correlated_patches():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(27, 27))
    patches = rng.normal(size=(20000, 27)) @ mixing * 0.1 + 0.5  # strongly correlated, not centred
    kernel = whitening_kernel(patches, 32, 3, 3)
    assert kernel.shape == (3, 3, 3, 32)
    out = responses(kernel, patches - patches.mean(axis=0))
    cov = np.cov(out[:, :16], rowvar=False)
    # unit variance (shrunk only by EPS against each eigenvalue) and no correlation between the directions
    np.testing.assert_allclose(np.diag(cov), 1.0, atol=0.05)
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 1e-6
    np.testing.assert_allclose(out[:, 16:], -out[:, :16], atol=1e-4)  # each direction with its negation
    assert EPS > 0


def test_patches_are_windows_of_the_images():
    images = np.arange(2 * 6 * 7 * 3, dtype=np.float64).reshape(2, 6, 7, 3)
    patches = image_patches(images, 3, count=50, seed=1).reshape(50, 3, 3, 3)
    for patch in patches:  # find the window the patch is; every patch must be one
        n, y, x, _ = np.argwhere(images == patch[0, 0, 0])[0]
        np.testing.assert_array_equal(patch, images[n, y:y + 3, x:x + 3])


def test_an_odd_filter_count_is_refused():
    with pytest.raises(ValueError, match="even number"):
        whitening_kernel(np.zeros((10, 27)), 31, 3, 3)


@pytest.mark.train
def test_a_whitened_run_keeps_its_first_convolution_frozen(labelled_folder, monkeypatch):
    import keras

    from cnn.training.train import train
    from common.keras_model import load_keras_model

    monkeypatch.chdir(labelled_folder("whiten"))
    run, _ = train(out="runs/w", whiten=True, **dict(TINY, epochs=2))
    conv1 = load_keras_model(run / "model.keras").get_layer("conv1")
    assert not conv1.trainable and json.loads((run / "config.json").read_text())["options"]["whiten"] is True
    kernel = conv1.get_weights()[0]
    np.testing.assert_allclose(kernel[..., 16:], -kernel[..., :16])  # still the whitening bank after 2 epochs
    assert isinstance(conv1, keras.layers.Conv2D)
