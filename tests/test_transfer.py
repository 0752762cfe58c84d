"""Transfer learning on the generated sample: pretrained-architecture models, --weights, --init, --freeze-backbone,
--fine-tune's second phase (and resuming across it), the feature cache, and the other commands on such runs.

Backbones use `--weights none` or weights files the tests save themselves (no download); MobileNetV2 at 32 px
and the card's network are the cheap models."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

from analysis.analyze import analyze
from analysis.cli import main as analyze_main
from analysis.graph import walk
from analysis.receptive import receptive_fields
from cnn.models.backbones import PREPROCESS, PRETRAINED, build_pretrained, preprocessing, weighted_layers
from cnn.cli import evaluate_main, export_main, predict_main, show_batch_main
from cnn.data.loader import flow_from_dataframe
from common.hashing import sha256_file
from cnn.models.architectures import MIN_IMAGE_SIZE, build_model
from cnn.training.options import TrainOptions
from cnn.runfolder import load_run
from cnn.training.train import train
from cnn.models.transfer import backbone_layers, build, unfreeze_top
from common.errors import UsageError
from conftest import REPO, TINY
from test_analysis_profiler import our_profiler_flops, profiler_flops
from interrupt import EpochRecorder, StopAfterEpoch

MODULES = {"Xception": "xception", "InceptionV3": "inception_v3", "ResNet50": "resnet50", "DenseNet121": "densenet",
           "MobileNetV2": "mobilenet_v2", "MobileNetV3Small": "mobilenet_v3", "EfficientNetB0": "efficientnet"}


@pytest.fixture(scope="module")
def workdir(labelled_folder, sample_labels):
    """labels.csv: 6 per class and split of the sample; three.csv: 3 of its classes (a smaller catalogue)."""
    table = sample_labels.groupby(["label", "split"]).head(6).sort_values("path")
    folder = labelled_folder("transfer", table)
    three = sorted(table.label.unique())[:3]
    table[table.label.isin(three)].to_csv(folder / "three.csv", index=False)
    return folder


def predictions(run_dir, workdir, split="test"):
    """The run's softmax outputs on a split of labels.csv, in CSV order."""
    run = load_run(run_dir)
    rows = pd.read_csv(workdir / "labels.csv").query("split == @split")
    loaded = flow_from_dataframe(rows, classes=run.classes, target_size=(run.image_size,) * 2)
    return np.concatenate([run.model.predict_on_batch(x) for x, _ in loaded.dataset])


# --- the models -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", sorted(PRETRAINED))
def test_preprocessing_inside_the_model_is_the_backbones_preprocess_input(arch):
    spec = PRETRAINED[arch]
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    inputs = keras.Input((8, 8, 3))
    ours = keras.Model(inputs, preprocessing(spec.preprocess, inputs)).predict_on_batch(images)
    theirs = getattr(keras.applications, MODULES[spec.app]).preprocess_input(images.copy())
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


def test_pretrained_model_is_backbone_gap_dense100_dropout_softmax():
    model = build_model("mobilenetv2", 5, (32, 32, 3))
    backbone = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    names = [layer.name for layer in model.layers]
    assert names[:2] == ["image", PREPROCESS] and names[-4:] == ["global_pool", "hidden", "dropout", "predictions"]
    assert model.get_layer("hidden").units == 100 and model.get_layer("dropout").rate == 0.5
    assert "Conv1" in names  # flat: the backbone's layers are the model's own (Grad-CAM, fine-tuning see them)
    assert model.count_params() == backbone.count_params() + 1280 * 100 + 100 + 100 * 5 + 5
    assert build_model("mobilenetv2", 5, (32, 32, 3), hidden=0, dropout=0.0).layers[-2].name == "global_pool"


@pytest.mark.parametrize("arch", ["mobilenetv2", "resnet50"])  # weights straight in; through a standalone (caffe)
def test_a_weights_file_loads_into_the_backbone(arch, tmp_path):
    keras.utils.set_random_seed(1)
    app = getattr(keras.applications, PRETRAINED[arch].app)
    standalone = app(include_top=False, weights=None, input_shape=(32, 32, 3))
    standalone.save_weights(tmp_path / "backbone.weights.h5")
    model = build_pretrained(arch, 4, (32, 32, 3), weights=str(tmp_path / "backbone.weights.h5"))
    ours = [w for layer in weighted_layers(backbone_layers(model), skip=(PREPROCESS,)) for w in layer.get_weights()]
    theirs = [w for layer in standalone.layers for w in layer.get_weights()]
    assert len(ours) == len(theirs) > 100
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


# --- options ----------------------------------------------------------------------------------------------------

def test_pretrained_architectures_default_to_the_tutorials_recipe():
    options = TrainOptions(arch="xception")
    assert (options.recipe, options.image_size, options.weights, options.freeze_backbone) == ("transfer", 299,
                                                                                               "imagenet", True)
    assert (options.optimizer, options.lr, options.augment, options.dropout) == ("adam", 5e-4,
                                                                                 "flip,zoom=0.1,shear=0.18", 0.5)
    assert TrainOptions(arch="mobilenetv2").image_size == 224
    card = TrainOptions()
    assert (card.recipe, card.image_size, card.weights, card.freeze_backbone) == ("default", 256, "none", False)
    mixed = TrainOptions(arch="xception", image_size=150, lr=1e-3, freeze_backbone=False, recipe="default")
    assert (mixed.image_size, mixed.lr, mixed.freeze_backbone, mixed.optimizer) == (150, 1e-3, False, "adamw")


@pytest.mark.parametrize("options, message", [
    (dict(weights="imagenet"), "--arch cnn5 is trained from scratch"),
    (dict(arch="mobilenetv2", weights="nowhere.h5"), "--weights nowhere.h5: must be imagenet, none, or an existing"),
    (dict(arch="mobilenetv2", fine_tune=3, freeze_backbone=False), "--fine-tune 3: follows a frozen first phase"),
    (dict(fine_tune=-1), "--fine-tune -1: must be 0 or more"),
    (dict(init="no-such-run"), "--init no-such-run: is not a finished train-cnn run folder"),
    (dict(arch="mobilenetv2", batch_norm=True), "has its own normalisation"),
    (dict(hidden=-2), "--hidden -2: must be 0 or more"),
])
def test_impossible_transfer_options_are_refused(options, message):
    """Refused when the options are built, or (a file that is not there) where the run starts: check_paths."""
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        TrainOptions(**options).check_paths()


def test_offline_imagenet_is_a_one_line_error_naming_the_file_and_folder(workdir, tmp_path):
    """A proxy that refuses connections makes any machine offline; KERAS_HOME an empty cache."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "KERAS_HOME": str(tmp_path / "keras"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    command = "import sys; from cnn.__main__ import main; sys.exit(main())"
    result = subprocess.run([sys.executable, "-c", command, "train", "--arch", "mobilenetv2", "--image-size", "96",
                             "--out", str(tmp_path / "run")], cwd=workdir, env=env, capture_output=True, text=True)
    error = [line for line in result.stderr.splitlines() if line.startswith("train-cnn: error:")]
    assert result.returncode == 2 and len(error) == 1, result.stderr
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in error[0]
    assert f"into {tmp_path / 'keras' / 'models'}/" in error[0]
    assert not (tmp_path / "run").exists() and "Traceback" not in result.stderr


# --- --init and --freeze-backbone -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def source_run(workdir):
    """A card-network run on all six classes: the 'big dataset' model the others start from."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        run, _ = train(out="runs/source", recipe="card", **dict(TINY, epochs=2))
    return workdir / run


@pytest.mark.train
def test_init_copies_every_weight_and_with_other_classes_only_the_classifier_starts_afresh(workdir, source_run):
    source = load_run(source_run).model
    same = build(TrainOptions(init=str(source_run), arch="cnn", image_size=32, recipe="card"),
                 load_run(source_run).classes)
    assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), same.get_weights()))
    other = build(TrainOptions(init=str(source_run), arch="cnn", image_size=32, recipe="card"), ["a", "b", "c"])
    for theirs, ours in zip(source.layers, other.layers):
        if ours.name == "predictions":
            assert ours.get_weights()[0].shape == (theirs.get_weights()[0].shape[0], 3)
        else:
            assert all(np.array_equal(a, b) for a, b in zip(theirs.get_weights(), ours.get_weights())), ours.name


@pytest.mark.train
def test_init_with_a_frozen_backbone_trains_only_the_head(workdir, source_run, monkeypatch):
    monkeypatch.chdir(workdir)
    run, _ = train(out="runs/shop", labels="three.csv", init=str(source_run), freeze_backbone=True, recipe="card",
                   feature_cache="off", **dict(TINY, epochs=2))
    source, tuned = load_run(source_run).model, load_run(run).model
    for name in ("conv1", "conv2", "conv3"):  # frozen: exactly the source's weights after two epochs
        assert all(np.array_equal(a, b) for a, b in zip(source.get_layer(name).get_weights(),
                                                          tuned.get_layer(name).get_weights()))
    assert tuned.get_layer("predictions").get_weights()[0].shape[1] == 3
    config = json.loads((run / "config.json").read_text())
    assert (config["options"]["init"], config["options"]["freeze_backbone"]) == (str(source_run), True)
    assert config["starting_weights"]["init"]["model_sha256"] == sha256_file(source_run / "model.keras")


@pytest.mark.train
def test_init_refuses_another_architecture_or_shape(workdir, source_run, monkeypatch):
    monkeypatch.chdir(workdir)
    with pytest.raises(UsageError, match="was trained with --arch cnn; pass --arch cnn"):
        train(out="runs/x", init=str(source_run), arch="cnn-deep", image_size=64, precision="float32")
    with pytest.raises(UsageError, match="layer 'predictions'.*give the --image-size"):
        train(out="runs/y", init=str(source_run), recipe="card", **dict(TINY, image_size=40))
    assert not (workdir / "runs" / "x").exists()


# --- --fine-tune ----------------------------------------------------------------------------------------------

def test_fine_tune_unfreezes_exactly_the_top_n_weighted_layers():
    model = build(TrainOptions(arch="mobilenetv2", weights="none", image_size=32), ["a", "b", "c"])
    names = unfreeze_top(model, 4)
    weighted = [layer for layer in backbone_layers(model) if layer.weights
                and not isinstance(layer, keras.layers.BatchNormalization) and layer.name != PREPROCESS]
    assert names == [layer.name for layer in weighted[-4:]] == ["block_16_expand", "block_16_depthwise",
                                                               "block_16_project", "Conv_1"]
    assert [layer.name for layer in backbone_layers(model) if layer.trainable] == names


@pytest.mark.train
def test_fine_tuning_changes_the_unfrozen_layers_only_and_batch_norm_stays_in_inference_mode():
    keras.utils.set_random_seed(0)
    model = build(TrainOptions(arch="cnn-deep", image_size=48, freeze_backbone=True, batch_norm=True), ["a", "b", "c"])
    assert unfreeze_top(model, 2) == ["conv3", "conv4"]
    before = {layer.name: [w.numpy().copy() for w in layer.weights] for layer in backbone_layers(model)}
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 255, (16, 48, 48, 3)), np.eye(3)[rng.integers(0, 3, 16)], epochs=1, verbose=0)
    changed = {layer.name for layer in backbone_layers(model)
               if not all(np.array_equal(a, w.numpy()) for a, w in zip(before[layer.name], layer.weights))}
    assert changed == {"conv3", "conv4"}  # bn1..bn4: neither gamma/beta nor the moving statistics moved


def fine_tune_run(workdir, out, callbacks=()):
    return train(out=out, recipe="transfer", fine_tune=2, callbacks=list(callbacks), **dict(TINY, epochs=2))


@pytest.mark.train
def test_fine_tune_is_a_second_phase_in_the_same_run_and_resumes_across_the_boundary(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    with pytest.raises(KeyboardInterrupt):  # killed at the end of the frozen phase's last epoch
        fine_tune_run(workdir, "runs/tune", [StopAfterEpoch(1)])
    run = workdir / "runs" / "tune"
    assert not (run / "phase.json").exists()
    recorder = EpochRecorder()
    fine_tune_run(workdir, "runs/tune", [recorder])
    assert recorder.epochs == [2, 3]  # the second phase only
    history = pd.read_csv(run / "history.csv")
    assert history["phase"].tolist() == [1, 1, 2, 2]
    np.testing.assert_allclose(history["learning_rate"], [5e-4, 5e-4, 5e-5, 5e-5], rtol=1e-6)
    assert json.loads((run / "phase.json").read_text())["start_epoch"] == 2
    assert (run / "metrics.json").is_file() and (run / "curves.png").is_file()


@pytest.mark.train
def test_a_run_killed_in_its_second_phase_resumes_in_it(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    with pytest.raises(KeyboardInterrupt):
        fine_tune_run(workdir, "runs/tune2", [StopAfterEpoch(2)])
    recorder = EpochRecorder()
    fine_tune_run(workdir, "runs/tune2", [recorder])
    assert recorder.epochs == [3]
    assert pd.read_csv(workdir / "runs" / "tune2" / "history.csv")["phase"].tolist() == [1, 1, 2, 2]


# --- the feature cache ----------------------------------------------------------------------------------------

@pytest.mark.slow  # two trainings, 13 s: kept out of make test
@pytest.mark.train
def test_feature_cache_trains_the_same_model_as_the_full_network(workdir, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(workdir)
    # The card's network with a frozen random backbone (random convolutions give varied features; a random
    # MobileNetV2 saturates at this size); the recipe's Dropout(0.5) and two batches an epoch, reshuffled.
    options = dict(TINY, epochs=2, recipe="transfer", augment="none", seed=3)
    full, _ = train(out="runs/uncached", feature_cache="off", **options)
    assert "feature cache:" not in capsys.readouterr().err
    cached, _ = train(out="runs/cached", **options)
    assert "features computed once" in capsys.readouterr().err
    on_disk, _ = train(out="runs/on-disk", cache=str(tmp_path / "cache"), **options)
    assert sorted(p.name.split("-features-")[1] for p in tmp_path.glob("cache.*-features-*"))  # files written
    expected = predictions(full, workdir)
    assert expected.std(axis=0).max() > 1e-4  # the head learned something input-dependent
    np.testing.assert_allclose(predictions(cached, workdir), expected, atol=1e-6)
    np.testing.assert_allclose(predictions(on_disk, workdir), expected, atol=1e-6)
    np.testing.assert_allclose(pd.read_csv(cached / "history.csv")["val_loss"],
                               pd.read_csv(full / "history.csv")["val_loss"], rtol=1e-6)


# --- the other commands on a transfer run ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def mobilenet_run(workdir):
    """A MobileNetV2 run by the transfer recipe, 32 px, one epoch (no augmentation: the feature cache's speed)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        run, _ = train(out="runs/mobilenet", weights="none", augment="none", **dict(TINY, arch="mobilenetv2"))
    return workdir / run


@pytest.mark.train
def test_evaluate_predict_and_analyze_take_a_transfer_run(workdir, mobilenet_run, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    image = pd.read_csv("labels.csv").path.iloc[0]
    assert evaluate_main([str(mobilenet_run)]) == 0
    assert predict_main([str(mobilenet_run), image, "--cam", "cams"]) == 0  # Grad-CAM on the backbone's last map
    assert len(list((workdir / "cams").glob("*-cam.png"))) == 1
    capsys.readouterr()
    assert analyze_main([str(mobilenet_run), "--flops", "--receptive-field", "--format", "json"]) == 0
    assert "warning" not in capsys.readouterr().err.lower()


@pytest.mark.slow
@pytest.mark.train
def test_show_batch_and_export_take_a_transfer_run(workdir, mobilenet_run, monkeypatch):
    monkeypatch.chdir(workdir)
    image = pd.read_csv("labels.csv").path.iloc[0]
    assert show_batch_main(["--errors", str(mobilenet_run), "-n", "4", "--cam", "-o", "errors.png"]) == 0
    assert export_main([str(mobilenet_run), "--format", "savedmodel"]) == 0
    assert predict_main([str(mobilenet_run / "export" / "savedmodel"), image]) == 0


# --- analyze-model --------------------------------------------------------------------------------------------

FAST_TO_PROFILE = {"mobilenetv2", "mobilenetv3small"}  # the rest take up to a minute each


@pytest.mark.parametrize("arch", [pytest.param(a, marks=[] if a in FAST_TO_PROFILE else [pytest.mark.slow])
                                  for a in sorted(PRETRAINED)])
def test_analyze_model_covers_every_pretrained_architecture(arch):
    """No layer without a FLOPs rule, a known receptive field through the backbone, and TensorFlow's profiler
    agreeing with our FLOPs total, preprocessing and head included."""
    keras.backend.clear_session()
    model = build_model(arch, 4, (MIN_IMAGE_SIZE[arch],) * 2 + (3,))
    _, meta = analyze(model, flops=True, receptive_field=True)
    assert meta["warnings"] == []
    assert all(field.known for field in receptive_fields(walk(model)))
    assert our_profiler_flops(model) == profiler_flops(model)
