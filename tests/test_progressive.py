"""--progressive: the resolution schedule, the grid layer that is the identity at full size, and a run that trains
its stages at their sizes, validates at --image-size, and resumes inside a stage."""
import json

import numpy as np
import pandas as pd
import pytest

from cnn.training.options import TrainOptions
from cnn.training.tricks.progressive import parse_progressive, stages
from common.errors import UsageError
from conftest import TINY
from interrupt import EpochRecorder, StopAfterEpoch


@pytest.mark.parametrize("spec, epochs, expected", [
    ("128:0.5", 20, [(0, 10, 128), (10, 20, 256)]),
    ("128", 20, [(0, 10, 128), (10, 20, 256)]),  # half the epochs unless told
    ("128,192:0.6", 20, [(0, 6, 128), (6, 12, 192), (12, 20, 256)]),
    ("128:0.25", 3, [(0, 1, 128), (1, 3, 256)]),
    ("none", 20, [(0, 20, 256)]),
])
def test_stages_share_the_epochs(spec, epochs, expected):
    assert stages(TrainOptions(progressive=spec, epochs=epochs, image_size=256)) == expected


@pytest.mark.parametrize("spec, message", [
    ("128:1.5", "must be in \\(0, 1\\)"), ("192,128:0.5", "must increase"), ("big:0.5", "SIZE"),
    ("16:0.5", "between 22"), ("256:0.5", "exclusive"),
])
def test_bad_schedules_are_refused_in_one_line(spec, message):
    with pytest.raises(UsageError, match=message):
        TrainOptions(progressive=spec, arch="cnn", image_size=256)


def test_pretrained_architectures_are_refused():
    with pytest.raises(UsageError, match="from-scratch"):
        TrainOptions(progressive="128:0.5", arch="mobilenetv2", weights="none")
    assert parse_progressive("128,160:0.75") == ((128, 160), 0.75)


def test_the_grid_layer_is_the_identity_at_full_size_and_takes_smaller_images():
    import keras

    from cnn.models.architectures import build_cnn5
    from cnn.training.tricks.progressive import flexible_twin

    keras.utils.set_random_seed(0)
    plain = build_cnn5(4, (128, 128, 3))
    gridded = build_cnn5(4, (128, 128, 3), grid=True)
    assert plain.count_params() == gridded.count_params()  # no parameters of its own
    gridded.set_weights(plain.get_weights())
    images = np.random.default_rng(0).uniform(0, 255, (2, 128, 128, 3)).astype("float32")
    np.testing.assert_allclose(gridded.predict(images, verbose=0), plain.predict(images, verbose=0), rtol=1e-5,
                               atol=1e-6)
    twin = flexible_twin(gridded)
    np.testing.assert_array_equal(twin.predict(images, verbose=0), gridded.predict(images, verbose=0))
    assert twin.predict(images[:, :96, :96], verbose=0).shape == (2, 4)  # a smaller image, the same Dense layer


@pytest.mark.train
def test_a_progressive_run_trains_each_stage_at_its_size_and_resumes_inside_one(labelled_folder, monkeypatch):
    from cnn.training.train import train
    from common.keras_model import load_keras_model

    monkeypatch.chdir(labelled_folder("progressive"))
    options = dict(TINY, image_size=48, epochs=4, patience=10, progressive="24:0.5")
    with pytest.raises(KeyboardInterrupt):
        train(out="runs/p", callbacks=[StopAfterEpoch(0)], **options)
    recorder = EpochRecorder()
    run, metrics = train(out="runs/p", callbacks=[recorder], **options)
    assert recorder.epochs == [1, 2, 3]  # the rest of the small stage, then the full-size one
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3] and history["image_size"].tolist() == [24, 24, 48, 48]
    assert history["val_loss"].notna().all()
    assert json.loads((run / "config.json").read_text())["options"]["progressive"] == "24:0.5"
    model = load_keras_model(run / "model.keras")
    assert tuple(model.inputs[0].shape[1:]) == (48, 48, 3) and model.get_layer("grid") is not None
    assert metrics["images"] > 0 and (run / "curves.png").stat().st_size > 0
