"""Grad-CAM and HiResCAM: the heatmap falls where the decision is made, matches the formulas worked out by hand
for a linear head, finds the right layer, and predict-cnn --cam / show-batch --cam write what they promise."""
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cnn import runfolder
from cnn.inference.cams import CAMS_CSV
from cnn.evaluation.gradcam import ALPHA, DPI, METHODS, PANEL_INCHES, cam_layer, cam_layers, heatmaps, overlay
from cnn.models.architectures import build_cnn, build_model
from cnn.inference.predict import predict_images
from cnn.inference.show_batch import show_batch
from common.errors import UsageError
from cnn.cli import main as cnn_main

SIZE = 32
CLASSES = ["red", "green"]
POOLED = 15  # build_cnn(filters=(2,)) at 32 px: conv3x3 'valid' -> 30, maxpool -> 15
PATCH = slice(2, 12)  # the deciding patch, inside the top-left quadrant (rows and columns 0..15)
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0)}
DISTRACTORS = [(0, 0, 255), (255, 255, 0), (255, 255, 255)]  # blue, yellow, white: neither detector fires


@pytest.fixture(scope="module")
def patch_model():
    """A card-shaped CNN whose answer depends only on the top-left quadrant, weights set by hand.

    conv1's two channels fire on red (R - G - B > 0.3) and on green pixels; the Dense layer reads channel
    0 (class red) and channel 1 (class green) only at the pooled positions of the top-left quadrant.
    """
    model = build_cnn(len(CLASSES), (SIZE, SIZE, 3), filters=(2,))
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[1, 1, :, 0] = [1, -1, -1]
    kernel[1, 1, :, 1] = [-1, 1, -1]
    model.get_layer("conv1").set_weights([kernel, np.full(2, -0.3, np.float32)])
    dense = np.zeros((POOLED, POOLED, 2, 2), np.float32)
    dense[:POOLED // 2, :POOLED // 2, 0, 0] = 1  # red's evidence: channel 0 in the top-left quadrant
    dense[:POOLED // 2, :POOLED // 2, 1, 1] = 1
    model.get_layer("predictions").set_weights([dense.reshape(-1, 2), np.zeros(2, np.float32)])
    return model


def patch_image(colour, size=SIZE, seed=0):
    """Grey noise, a blue, a yellow and a white square in the other quadrants, and `colour`'s patch top-left."""
    rng = np.random.default_rng(seed)
    image = np.repeat(rng.uniform(40, 200, (size, size, 1)), 3, axis=2)
    scale = size // SIZE
    half, lo, hi = size // 2, PATCH.start * scale, PATCH.stop * scale
    for (top, left), rgb in zip([(0, half), (half, 0), (half, half)], DISTRACTORS):
        image[top + lo:top + hi, left + lo:left + hi] = rgb
    image[lo:hi, lo:hi] = COLOURS[colour]
    return image.astype(np.float32)


@pytest.mark.parametrize("method", METHODS)
def test_the_heatmap_falls_on_the_patch_that_decides(patch_model, method):
    images = np.stack([patch_image("red", seed=1), patch_image("green", seed=2)])
    assert list(patch_model.predict(images, verbose=0).argmax(axis=1)) == [0, 1]  # the fixture works
    heat = heatmaps(patch_model, images, [0, 1], method=method)
    assert heat.shape == (2, SIZE, SIZE) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max(axis=(1, 2)) == pytest.approx([1, 1])
    half = SIZE // 2
    for one in heat:
        assert one[:half, :half].sum() / one.sum() > 0.6
    # nothing in a red image speaks for green: an all-zero map, not a normalised speck of noise
    assert not heatmaps(patch_model, images[:1], [1], method=method).any()


def by_hand(cam, size=SIZE):
    """A map of feature positions (h, w) as the papers finish it: ReLU, upsampled with Pillow, over its max."""
    cam = np.asarray(Image.fromarray(np.maximum(cam, 0).astype(np.float32)).resize((size, size), Image.BILINEAR))
    return cam / cam.max()


@pytest.fixture(scope="module")
def random_model():
    """A card-shaped CNN with random weights and 3 classes: a linear head on a 15x15x4 pooled map."""
    keras.utils.set_random_seed(3)
    return build_cnn(3, (SIZE, SIZE, 3), filters=(4,))


def pooled_features(model, image):
    """pool1's output for one image, computed by Keras apart from Grad-CAM."""
    return keras.Model(model.inputs, model.get_layer("pool1").output)([image[None]])[0].numpy()


def test_the_score_is_the_logit_for_a_dense_softmax_head(random_model):
    """A logit is linear in the pooled map: its gradient is the Dense kernel's column, so alpha is its mean."""
    image = np.random.default_rng(4).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    kernel = random_model.get_layer("predictions").get_weights()[0].reshape(POOLED, POOLED, 4, 3)
    for c in range(3):
        expected = by_hand(pooled_features(random_model, image) @ kernel[..., c].mean(axis=(0, 1)))
        np.testing.assert_allclose(heatmaps(random_model, image[None], [c], method="gradcam")[0], expected, atol=1e-4)


def test_hirescam_is_each_positions_share_of_the_logit(random_model):
    """HiResCAM multiplies gradient and feature position by position: with a linear head, W_c * A summed over
    channels, whose sum over positions is the logit less the bias."""
    image = np.random.default_rng(6).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    kernel, bias = random_model.get_layer("predictions").get_weights()
    features = pooled_features(random_model, image)
    shares = [(features * kernel.reshape(POOLED, POOLED, 4, 3)[..., c]).sum(axis=-1) for c in range(3)]
    # log p_c = logit_c - log(sum exp): the same constant for every class
    log_p = np.log(random_model.predict(image[None], verbose=0)[0])
    assert np.ptp([share.sum() + bias[c] - log_p[c] for c, share in enumerate(shares)]) < 1e-3
    for c, share in enumerate(shares):
        np.testing.assert_allclose(heatmaps(random_model, image[None], [c], method="hirescam")[0], by_hand(share),
                                   atol=1e-4)


def test_behind_global_average_pooling_hirescam_equals_gradcam():
    keras.utils.set_random_seed(7)
    model = build_cnn(3, (SIZE, SIZE, 3), filters=(4, 8), head="global")
    images = np.random.default_rng(8).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(heatmaps(model, images, [0, 1, 2], method="hirescam"),
                               heatmaps(model, images, [0, 1, 2], method="gradcam"), atol=1e-5)


def test_behind_flatten_gradcam_can_miss_the_evidence_that_hirescam_shows(patch_model):
    """Red's Dense weights: +1 on the top-left quadrant, -0.5 elsewhere. A red patch top-left makes red's logit
    positive, but Grad-CAM's channel weight is the weights' mean over all positions, negative: an empty map."""
    model = keras.models.clone_model(patch_model)
    model.set_weights(patch_model.get_weights())
    dense, bias = model.get_layer("predictions").get_weights()
    dense = dense.reshape(POOLED, POOLED, 2, 2)
    dense[..., 0, 0] = np.where(dense[..., 0, 0] > 0, 1, -0.5)
    model.get_layer("predictions").set_weights([dense.reshape(-1, 2), bias])
    image = patch_image("red", seed=9)[None]
    assert model.predict(image, verbose=0).argmax() == 0
    assert not heatmaps(model, image, [0], method="gradcam").any()
    heat = heatmaps(model, image, [0], method="hirescam")[0]
    assert heat[:SIZE // 2, :SIZE // 2].sum() / heat.sum() > 0.6


def test_without_a_dense_softmax_head_the_score_is_the_log_probability(random_model):
    """Dense (linear) then a Softmax layer: d log p_c = W_c - sum_j p_j W_j, so alpha is that mean."""
    head = random_model.get_layer("predictions")
    logits = keras.layers.Dense(3, name="logits")
    outputs = keras.layers.Softmax()(logits(random_model.get_layer("flatten").output))
    model = keras.Model(random_model.input, outputs)
    logits.set_weights(head.get_weights())
    image = np.random.default_rng(5).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    p = model.predict(image[None], verbose=0)[0]
    kernel = head.get_weights()[0].reshape(POOLED, POOLED, 4, 3)
    for c in range(3):
        expected = by_hand(pooled_features(random_model, image) @ (kernel[..., c] - kernel @ p).mean(axis=(0, 1)))
        np.testing.assert_allclose(heatmaps(model, image[None], [c], method="gradcam")[0], expected, atol=1e-4)


@pytest.mark.parametrize("arch, options, size, last", [
    ("cnn", {}, 64, "pool3"),  # the card's network: Flatten after pool3
    ("cnn", {"head": "global"}, 64, "pool3"),  # global average pooling after pool3
    ("cnn-deep", {}, 64, "pool4"),  # batch norm: conv, bn, relu, pool per stage
    ("cnn5", {"dropout": 0.5}, 94, "pool5"),  # a hidden Dense and dropout after Flatten
])
def test_the_default_layer_is_the_last_spatial_map_before_the_head(arch, options, size, last):
    model = build_model(arch, 4, (size, size, 3), **options)
    assert cam_layer(model).name == last
    heat = heatmaps(model, np.zeros((1, size, size, 3), np.float32), [0])
    assert heat.shape == (1, size, size) and 0 <= heat.min() and heat.max() <= 1


def test_a_named_layer_must_exist_and_be_spatial_and_a_method_known(random_model):
    assert cam_layers(random_model) == ["rescale", "conv1", "pool1"]
    assert cam_layer(random_model, "conv1").name == "conv1"
    heat = heatmaps(random_model, np.ones((1, SIZE, SIZE, 3), np.float32), [0], layer="conv1")
    assert heat.shape == (1, SIZE, SIZE)
    with pytest.raises(UsageError, match=r"^--cam-layer flatten has no spatial \(4-D\) output in model clothing_cnn; "
                                         r"choose one of: rescale, conv1, pool1$"):
        cam_layer(random_model, "flatten")
    with pytest.raises(UsageError, match="^--cam-layer conv9 does not exist in model clothing_cnn; choose one of"):
        cam_layer(random_model, "conv9")
    with pytest.raises(UsageError, match="^--cam-method nosuch is unknown; choose one of: hirescam, gradcam$"):
        heatmaps(random_model, np.ones((1, SIZE, SIZE, 3), np.float32), [0], method="nosuch")


def test_overlay_stretches_the_heatmap_over_the_picture_and_blends_the_colormap():
    picture = np.full((40, 60, 3), 100, np.uint8)
    heatmap = np.zeros((4, 4), np.float32)
    heatmap[:, :2] = 1  # the left half is hot
    out = overlay(picture, heatmap)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    # jet: 1 is dark red (0.5, 0, 0), 0 is dark blue (0, 0, 0.5), in [0, 1] units of 255
    hot = (1 - ALPHA) * 100 + ALPHA * np.array([127.5, 0, 0])
    cold = (1 - ALPHA) * 100 + ALPHA * np.array([0, 0, 127.5])
    np.testing.assert_allclose(out[:, :20], np.broadcast_to(hot, (40, 20, 3)), atol=1)
    np.testing.assert_allclose(out[:, -20:], np.broadcast_to(cold, (40, 20, 3)), atol=1)


@pytest.fixture(scope="module")
def patch_run(patch_model, tmp_path_factory):
    """A run folder holding the hand-set model, and 64-px images of its two classes with a labels CSV.

    red.png and sub/red.png share a stem; green.png is labelled red in the CSV, so it is a mistake.
    """
    root = tmp_path_factory.mktemp("patch")
    run = root / "run"
    run.mkdir()
    patch_model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"options": {"image_size": SIZE}}))
    (run / "classes.json").write_text(json.dumps(dict(enumerate(CLASSES))))
    (root / "images" / "sub").mkdir(parents=True)
    images = {"images/red.png": "red", "images/green.png": "green", "images/sub/red.png": "red"}
    for seed, (name, colour) in enumerate(images.items()):
        Image.fromarray(patch_image(colour, size=2 * SIZE, seed=seed).astype(np.uint8)).save(root / name)
    labels = pd.DataFrame({"path": list(images), "label": ["red", "red", "red"], "split": "test"})
    labels.to_csv(root / "labels.csv", index=False)
    return root


def run_cnn(args, cwd, capsys):
    """`python -m cnn ARGS` in `cwd`, in this process (TensorFlow is loaded already): (exit status, stdout, stderr)."""
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        status = cnn_main(args)
    out, err = capsys.readouterr()
    return status, out, err


def test_predict_cam_writes_a_picture_per_image_and_cams_csv(patch_run, capsys):
    images = ["images/red.png", "images/green.png", "images/sub/red.png"]
    plain = run_cnn(["predict", "run", *images, "--top", "2"], patch_run, capsys)
    status, out, err = run_cnn(["predict", "run", *images, "--top", "2", "--cam", "cams", "--labels", "labels.csv"],
                               patch_run, capsys)
    assert status == 0, err
    assert out == plain[1]  # the printed table is unchanged
    cams = pd.read_csv(patch_run / "cams" / CAMS_CSV, keep_default_na=False)
    assert list(cams.columns) == ["image", "class", "probability", "true_class", "cam"]
    assert list(cams["image"]) == images and list(cams["true_class"]) == ["red", "red", "red"]
    assert list(cams["class"]) == ["red", "green", "red"]  # the model's answer: the top-left patch's colour
    assert list(cams["cam"]) == ["red-cam.png", "green-cam.png", "red-2-cam.png"]
    assert sorted(p.name for p in (patch_run / "cams").iterdir()) == sorted([CAMS_CSV, *cams["cam"]])
    panel = PANEL_INCHES * DPI  # one panel when right, the prediction's and the truth's side by side when wrong
    widths = [Image.open(patch_run / "cams" / name).size[0] for name in cams["cam"]]
    assert widths == [pytest.approx(panel, abs=1), pytest.approx(2 * panel, abs=1), pytest.approx(panel, abs=1)]


def test_a_bad_cam_layer_is_one_line_and_exit_2(patch_run, capsys):
    status, out, err = run_cnn(["predict", "run", "images/red.png", "--cam", "bad", "--cam-layer", "flatten"],
                               patch_run, capsys)
    assert status == 2 and out == ""
    assert err.splitlines() == ["predict-cnn: error: --cam-layer flatten has no spatial (4-D) output in model "
                                "clothing_cnn; choose one of: rescale, conv1, pool1"]
    assert not (patch_run / "bad").exists()


def redness(png):
    """Red minus blue of every pixel of a PNG, as floats."""
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=float)
    return pixels[..., 0] - pixels[..., 2]


def test_show_batch_errors_cam_draws_each_mistake_with_its_heatmap(patch_run, tmp_path, monkeypatch):
    monkeypatch.chdir(patch_run)
    options = dict(labels_csv="labels.csv", n=1, errors_run="run")
    plain = show_batch(out_png=tmp_path / "plain.png", **options)
    loads = []
    real_load = runfolder.load_keras_model
    monkeypatch.setattr(runfolder, "load_keras_model", lambda path: loads.append(path) or real_load(path))
    drawn = show_batch(out_png=tmp_path / "cam.png", cam=True, **options)
    assert len(loads) == 1  # the prediction and the heatmaps share one loaded model
    assert drawn.equals(plain) and list(drawn["path"]) == ["images/green.png"]  # the one mistake, titled as today
    # Where the two grids differ is the picture; the heatmap's added red sits in its top-left quadrant.
    added = redness(tmp_path / "cam.png") - redness(tmp_path / "plain.png")
    rows, cols = np.nonzero(np.abs(added) > 0)
    box = added[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = box.shape
    assert box[:h // 2, :w // 2].mean() > box[h // 2:, w // 2:].mean() + 50


def test_show_batch_cam_from_the_command_line(patch_run, capsys):
    status, _, err = run_cnn(["show-batch", "--errors", "run", "--labels", "labels.csv", "--cam", "-o", "e.png"],
                             patch_run, capsys)
    assert status == 0, err
    assert Image.open(patch_run / "e.png").size[0] > 100
    status, _, err = run_cnn(["show-batch", "--labels", "labels.csv", "--cam", "-o", "x.png"], patch_run, capsys)
    assert status == 2 and "give the run with --errors RUN" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("call, message", [
    (lambda: show_batch(labels_csv="labels.csv", out_png="x.png", cam=True), "give the run with --errors RUN"),
    (lambda: show_batch(labels_csv="labels.csv", out_png="x.png", errors_run="run", cam_layer="conv1"), "add --cam"),
    (lambda: predict_images("run", ["images/red.png"], labels_csv="labels.csv"), "add --cam OUTDIR"),
    (lambda: predict_images("run", ["images/red.png"], cam_dir="out", labels_csv="other.csv"),
     "none of the 1 images is listed in other.csv"),
])
def test_cam_options_without_their_purpose_are_user_errors(patch_run, monkeypatch, call, message):
    monkeypatch.chdir(patch_run)
    pd.DataFrame({"path": ["images/green.png"], "label": ["green"], "split": ["test"]}).to_csv("other.csv", index=False)
    with pytest.raises(UsageError, match=message):
        call()
    assert not any(Path(name).exists() for name in ("x.png", "out"))
