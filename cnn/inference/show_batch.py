"""Pictures of the data: a titled grid of images from a labels CSV, or a run's worst test predictions (show-batch).

The grid is what a user looks at before trusting any number: are the labels right, do the splits look
alike, which images does the model get most wrong (fastai's "top losses": lowest probability given to
the true class first).
"""
import math
from pathlib import Path

from cnn.data.labels_csv import check_known_labels, read_labels, select_split
from cnn.data.shards import images_at, read_rows, rows_csv
from cnn.inference.cams import cam_run, overlay_predicted
from cnn.evaluation.gradcam import DEFAULT_METHOD
from cnn.evaluation.pictures import draw_grid, open_image
from cnn.inference.predict import predict_files
from cnn.runs.predictor import open_run
from common.atomic import write_csv
from common.errors import UsageError



def sample_rows(df, n, per_class, seed):
    """`n` random rows, or `per_class` random rows of each label (labels sorted); one seed, same pick."""
    import pandas as pd

    if per_class is None:
        return df.sample(min(n, len(df)), random_state=seed)
    return pd.concat([rows.sample(min(per_class, len(rows)), random_state=seed)
                      for _, rows in df.groupby("label", sort=True)])


def grid_cells(rows, per_class, cols):
    """Each drawn image's cell index (row-major): in order, or one grid row per label for `per_class`."""
    if per_class is None or cols != per_class:
        return list(range(len(rows)))
    rank = rows.groupby("label", sort=True).cumcount().to_numpy()
    row_of = {label: i for i, label in enumerate(sorted(set(rows["label"])))}
    return [row_of[label] * cols + int(r) for label, r in zip(rows["label"], rank)]


def worst_predictions(predictor, run_dir, labels_csv, n, split):
    """The `n` rows of `split` whose true class got the lowest probability from `predictor` (run_dir's), with
    prediction and confidence.

    Uses `labels_csv`, or by default the run's own labels CSV (config.json); an unreadable image is skipped.
    """
    from cnn.data.labels_csv import run_labels

    classes = predictor.classes
    df, source = run_labels(run_dir, labels_csv)
    rows = select_split(df, split, source)
    check_known_labels(rows, classes, source)
    # predict-cnn's own path: the same decoding as training, every class's probability
    readable, probs, _ = predict_files(predictor, list(rows["path"]))
    at = {str(path): i for i, path in enumerate(readable)}
    keys = [str(Path(p)) for p in rows["path"]]
    rows = rows[[k in at for k in keys]].copy()
    index = [at[k] for k in keys if k in at]
    rows["predicted"] = [classes[j] for j in probs[index].argmax(axis=1)]
    rows["confidence"] = probs[index].max(axis=1)
    rows["p_true"] = probs[index, [classes.index(label) for label in rows["label"]]]
    return rows.sort_values(["p_true", "path"], kind="stable").head(n).reset_index(drop=True)


def titles(rows):
    """One title per drawn image: label and split, or true -> predicted with the probabilities."""
    if "predicted" not in rows:
        return [f"{label}\n{split}" for label, split in zip(rows["label"], rows["split"])]
    return [f"true: {t}\npred: {p} {c:.2f}\np(true) {pt:.2f}"
            for t, p, c, pt in zip(rows["label"], rows["predicted"], rows["confidence"], rows["p_true"])]


def choose_rows(labels_csv, n, per_class, split, seed, errors_run, data=None, cam=False, cam_layer=None):
    """The rows to draw, and the run whose model draws --cam's heatmaps (or None): a seeded sample of the
    labels CSV (or of a shards folder's rows), or a run's worst predictions (its model loaded once)."""
    if errors_run is not None:
        predictor = open_run(errors_run)
        run = cam_run(predictor, errors_run, cam_layer) if cam else None
        return worst_predictions(predictor, errors_run, labels_csv, n, split or "test"), run
    source = str(rows_csv(data)) if data is not None else (labels_csv or "labels.csv")
    df = read_labels(source) if data is None else read_rows(data)
    return sample_rows(df if split is None else select_split(df, split, source), n, per_class, seed), None


def show_batch(labels_csv=None, *, out_png="batch.png", n=16, per_class=None, split=None, seed=0,
               errors_run=None, cols=None, cam=False, cam_layer=None, cam_method=DEFAULT_METHOD, data=None):
    """Draw a titled grid of images and save it to `out_png`; return a DataFrame of what was drawn, in order.

    Columns: path, label, split, title, cell (its row-major grid position), plus with `errors_run`:
    predicted, confidence (probability of the predicted class), p_true (probability of the true class).
    The same table is written beside the PNG (OUT.csv). `labels_csv` defaults to labels.csv, or with
    `errors_run` to the run's own CSV; its image paths resolve from the current folder, as for train-cnn.
    With `errors_run` and `cam`, each image carries the heatmap of its predicted class (cnn.evaluation.gradcam's
    `cam_method` on layer `cam_layer`, by default the last spatial one): where the model found the evidence
    for its mistake. With `data` (a pack-shards folder) the images are the packed pixels of its rows.
    """
    for name, value in (("-n", n), ("--per-class", per_class), ("--cols", cols)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, not {value}")
    if errors_run is not None and per_class is not None:
        raise UsageError("--errors shows a run's worst predictions overall; it cannot be combined with --per-class")
    if cam and errors_run is None:
        raise UsageError("--cam draws the heatmaps of a run's predictions; give the run with --errors RUN")
    if cam_layer is not None and not cam:
        raise UsageError("--cam-layer names the layer of --cam's heatmaps; add --cam")
    if data is not None and (errors_run is not None or labels_csv is not None):
        raise UsageError("--data draws the packed images of a shards folder; drop --labels and --errors")
    rows, run = choose_rows(labels_csv, n, per_class, split, seed, errors_run, data, cam, cam_layer)
    images = [open_image(p) for p in rows["path"]] if data is None else images_at(data, rows)
    if not any(image is not None for image in images):
        raise UsageError(f"none of the {len(images)} chosen images could be read; check the paths in the labels "
                         f"CSV (they resolve from the current folder)")
    rows = rows[[image is not None for image in images]].reset_index(drop=True)
    images = [image for image in images if image is not None]
    if cam:
        images = overlay_predicted(run, rows, images, layer=cam_layer, method=cam_method)
    rows["title"] = titles(rows)
    colours = (["black"] * len(rows) if "predicted" not in rows
               else ["green" if ok else "red" for ok in rows["predicted"] == rows["label"]])
    cols = cols or (per_class if per_class is not None else math.ceil(math.sqrt(len(images))))
    rows["cell"] = grid_cells(rows, per_class, cols)
    draw_grid(images, list(rows["title"]), colours, list(rows["cell"]), cols, Path(out_png))
    extra = [c for c in ("predicted", "confidence", "p_true") if c in rows]
    drawn = rows[["path", "label", "split", "title", "cell"] + extra]
    write_csv(Path(out_png).with_suffix(".csv"), drawn, index=False)
    return drawn
