"""Grad-CAM pictures of a run's predictions: predict-cnn --cam (a PNG per image and cams.csv) and show-batch --cam.

Each picture is the image file itself (not the model's smaller input) with the heatmap stretched over it,
so a user sees which part of the garment, or of the background, the decision came from.
"""
from pathlib import Path

from cnn.data.labels_csv import check_known_labels, read_labels
from cnn.data.loader import decode_and_resize
from cnn.evaluation.gradcam import DEFAULT_METHOD, cam_layer, heatmaps, overlay, save_panels
from cnn.evaluation.pictures import open_picture
from cnn.runs.predictor import UNEXPLAINED
from common.atomic import write_csv
from common.errors import UsageError

CAMS_CSV = "cams.csv"  # predict-cnn --cam's index: image, class, probability, true_class, cam
TITLE_COLOURS = {None: "black", True: "green", False: "red"}  # prediction right? (None: truth unknown)


def listed_labels(labels_csv, classes):
    """{resolved image path: label} of a labels CSV (paths from the current folder), labels among `classes`."""
    if labels_csv is None:
        return {}
    df = read_labels(labels_csv)
    check_known_labels(df, classes, labels_csv)
    return {Path(path).resolve(): label for path, label in zip(df["path"], df["label"])}


def cam_file_names(paths):
    """One file name per image, `<stem>-cam.png`; a stem met again gets -2, -3, ... (DeepFashion repeats
    img_00000001.jpg in every product folder), so no picture overwrites another."""
    taken, names = set(), []
    for path in paths:
        stem, n = Path(path).stem, 1
        name = f"{stem}-cam.png"
        while name in taken:
            n += 1
            name = f"{stem}-{n}-cam.png"
        taken.add(name)
        names.append(name)
    return names


def picture_of(path, pixels):
    """The image file to draw on, or the model's own input pixels where Pillow cannot read the file."""
    try:
        return open_picture(path)
    except (OSError, ValueError):
        return pixels.astype("uint8")


def cam_run(predictor, source, layer=None):
    """The run whose Keras model draws the heatmaps, with `layer` checked before any image is read;
    a hierarchical run or an export (no single Keras model) is a UsageError."""
    if predictor.explained is None:
        raise UsageError(f"--cam needs the Keras model of a train-cnn run folder; {source} is "
                         f"{UNEXPLAINED[predictor.kind]}")
    cam_layer(predictor.explained.model, layer)
    return predictor.explained


def cam_writer(predictor, source, out_dir, layer=None, method=DEFAULT_METHOD, labels_csv=None):
    """Check --cam's run, --cam-layer and --labels now; return draw(paths, images, probabilities) that writes
    the pictures. `images` are the model's inputs and `probabilities` its outputs for them, as predict-cnn
    computed them.
    """
    run = cam_run(predictor, source, layer)
    truth = listed_labels(labels_csv, run.classes)

    def draw(paths, images, probabilities):
        true = [truth.get(Path(path).resolve()) for path in paths]
        if labels_csv is not None and not any(true):
            raise UsageError(f"none of the {len(paths)} images is listed in {labels_csv} (its paths resolve from "
                             f"the current folder, and must name the same files)")
        write_cams(run, paths, images, probabilities, true, Path(out_dir), layer=layer, method=method)

    return draw


def write_cams(run, paths, images, probabilities, true, out_dir, layer=None, method=DEFAULT_METHOD):
    """OUT_DIR/<stem>-cam.png per image: the top class's heatmap, and beside it the true class's where
    `true` names one and the model predicted another; then OUT_DIR/cams.csv, one row per image."""
    import pandas as pd

    top = probabilities.argmax(axis=1)
    wanted = [run.classes.index(t) if t is not None else k for t, k in zip(true, top)]
    heat_top = heatmaps(run.model, images, top, layer=layer, method=method)
    differ = any(w != k for w, k in zip(wanted, top))
    heat_true = heatmaps(run.model, images, wanted, layer=layer, method=method) if differ else heat_top
    rows = []
    for i, (path, name) in enumerate(zip(paths, cam_file_names(paths))):
        picture = picture_of(path, images[i])
        predicted, right = run.classes[top[i]], None if true[i] is None else true[i] == run.classes[top[i]]
        panels = [(overlay(picture, heat_top[i]), f"pred: {predicted} {probabilities[i, top[i]]:.2f}",
                   TITLE_COLOURS[right])]
        if right is False:
            panels.append((overlay(picture, heat_true[i]), f"true: {true[i]} {probabilities[i, wanted[i]]:.2f}",
                           "black"))
        save_panels(panels, out_dir / name)
        rows.append({"image": str(path), "class": predicted, "probability": round(float(probabilities[i, top[i]]), 6),
                     "true_class": true[i] or "", "cam": name})
    write_csv(out_dir / CAMS_CSV, pd.DataFrame(rows), index=False)


def overlay_predicted(run, rows, pictures, layer=None, method=DEFAULT_METHOD):
    """show-batch --cam: each picture of `rows` (path, predicted) with its predicted class's heatmap overlaid,
    by the run's already loaded model; only the drawn images are decoded again, as the model saw them."""
    import numpy as np

    size = (run.image_size, run.image_size)
    images = np.stack([decode_and_resize(path, size) for path in rows["path"]])
    heat = heatmaps(run.model, images, [run.classes.index(c) for c in rows["predicted"]], layer=layer, method=method)
    return [overlay(picture, h) for picture, h in zip(pictures, heat)]
