"""Test-time augmentation: the flip is the mirror, the average is the mean of the two outputs, and evaluate-cnn
and predict-cnn apply it (with the run's temperature after the average) and record it."""
import json

import keras
import numpy as np
import pytest

from cnn.runs.tta import FlipAverage, mirrored, with_tta


def tiny_model():
    inputs = keras.Input((8, 6, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x)))


def test_the_flip_is_the_left_right_mirror():
    images = np.arange(2 * 4 * 5 * 3, dtype=np.float32).reshape(2, 4, 5, 3)
    assert np.array_equal(mirrored(images), images[:, :, ::-1, :])
    assert np.array_equal(mirrored(images)[0, 1, 0], images[0, 1, 4])
    assert np.array_equal(np.asarray(mirrored(keras.ops.convert_to_tensor(images))), np.flip(images, axis=2))


def test_flip_tta_is_the_mean_of_the_two_outputs():
    model = tiny_model()
    images = np.random.default_rng(0).uniform(0, 255, (5, 8, 6, 3)).astype("float32")
    expected = (model.predict_on_batch(images) + model.predict_on_batch(np.flip(images, axis=2))) / 2
    assert np.allclose(FlipAverage(model).predict_on_batch(images), expected, atol=1e-6)
    assert with_tta(model, "none") is model
    assert FlipAverage(model).inputs is model.inputs  # the rest of the model shows through


@pytest.mark.train
def test_evaluate_and_predict_apply_the_flip(small_run, monkeypatch, tmp_path):
    from cnn.cli import evaluate_main
    from cnn.runs.temperature import scaled
    from cnn.inference.predict import predict_images
    from cnn.runfolder import load_run

    run, table = small_run
    monkeypatch.chdir(run.parent)
    assert evaluate_main([str(run), "--tta", "flip"]) == 0
    metrics = json.loads((run / "eval-test-tta-flip" / "metrics.json").read_text())
    assert metrics["tta"] == "flip" and metrics["images"] == (table.split == "test").sum()
    assert json.loads((run / "metrics.json").read_text())["tta"] == "none"  # the training report is untouched
    path = table.path.iloc[0]
    [(_, preds)] = predict_images(run, [path], top=6, tta="flip")
    loaded = load_run(run)
    from cnn.data.loader import decode_and_resize

    image = decode_and_resize(path, (32, 32))[None]
    raw = (loaded.model.predict_on_batch(image) + loaded.model.predict_on_batch(image[:, :, ::-1])) / 2
    expected = scaled(np.asarray(raw, np.float64), loaded.temperature)[0]
    got = {name: p for name, p in preds}
    assert [got[c] for c in loaded.classes] == pytest.approx(expected.tolist(), abs=1e-5)


@pytest.mark.train
def test_an_ensemble_is_the_mean_of_its_members_calibrated_probabilities(labelled_folder, monkeypatch):
    from cnn.cli import evaluate_main
    from cnn.runs.temperature import scaled
    from cnn.experiments.repeats import train_repeats
    from cnn.inference.predict import predict_images
    from cnn.runfolder import load_run
    from conftest import TINY

    folder = labelled_folder("ensemble")
    monkeypatch.chdir(folder)
    train_repeats("rep", 2, {**TINY, "labels": "labels.csv"})
    assert evaluate_main(["rep"]) == 0
    metrics = json.loads((folder / "rep" / "ensemble" / "metrics.json").read_text())
    assert metrics["ensemble"]["n"] == 2 and "ensemble of 2 runs" in (folder / "rep" / "ensemble" / "report.txt"
                                                                       ).read_text()
    import pandas as pd

    path = pd.read_csv(folder / "labels.csv").query("split == 'test'").path.iloc[0]
    [(_, preds)] = predict_images(folder / "rep", [path], top=6)
    from cnn.data.loader import decode_and_resize

    image = decode_and_resize(path, (32, 32))[None]
    members = [load_run(folder / "rep" / f"seed-{s}") for s in (0, 1)]
    expected = np.mean([scaled(np.asarray(m.model.predict_on_batch(image), np.float64), m.temperature)
                        for m in members], axis=0)[0]
    got = dict(preds)
    assert [got[c] for c in members[0].classes] == pytest.approx(expected.tolist(), abs=1e-5)

    # export-model serves the same mean as one model (each member's temperature folded into its classifier) ...
    from cnn.inference.export import export_run
    from cnn.runs.predictor import open_run

    exported = export_run(folder / "rep", fmt="savedmodel")
    assert json.loads((exported / "export.json").read_text())["ensemble"]["n"] == 2
    np.testing.assert_allclose(np.asarray(open_run(exported).predict_on_batch(image))[0], expected, atol=1e-5)
    # ... and a student distils from it.
    from cnn.training.train import train

    student, _ = train(out="student", teacher="rep", **TINY)
    assert json.loads((student / "config.json").read_text())["options"]["teacher"] == "rep"
