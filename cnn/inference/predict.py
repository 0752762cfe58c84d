"""Classify image files with a trained run: each image's top classes with probabilities (predict-cnn)."""
import csv
import io
import json
from pathlib import Path

from cnn.inference.cams import cam_writer
from cnn.evaluation.gradcam import DEFAULT_METHOD
from cnn.runs.predictor import open_run
from cnn.runs.ranking import prediction_record, top_classes
from common.console import writer
from common.errors import UsageError
from common.schema import is_image_name

warn = writer("predict-cnn", "warning: ")


def find_images(paths):
    """Files given directly, plus image files found (recursively, sorted) in given folders."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and is_image_name(p.name))
        elif path.is_file():
            found.append(path)
        else:
            warn(f"{path} not found, skipped")
    return found


def predict_files(predictor, paths, batch_size=32, keep_images=False):
    """(readable paths, probabilities, images or None) for the image files under `paths`, read in parallel
    batches by the training loader; undecodable files are warned about and skipped, none readable is a UsageError."""
    import numpy as np
    import pandas as pd

    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe

    files = [str(p) for p in find_images(paths)]
    if not files:
        raise UsageError("no readable image among the given paths")
    size = (predictor.image_size, predictor.image_size)
    loaded = flow_from_dataframe(pd.DataFrame({"path": files}), y_col=None, target_size=size,
                                 batching=Batching(batch_size=batch_size))
    probs, images = [], []
    for batch in loaded.dataset:
        batch = np.asarray(batch)
        probs.append(np.asarray(predictor.predict_on_batch(batch)))
        images += [batch] if keep_images else []
    skipped = set(loaded.skipped.paths)
    readable = [Path(p) for p in files if p not in skipped]
    if not readable:
        raise UsageError("no readable image among the given paths")
    return readable, np.concatenate(probs), np.concatenate(images) if keep_images else None


def predict_images(source, paths, top=3, batch_size=32, cam_dir=None, cam_layer=None, cam_method=DEFAULT_METHOD,
                   labels_csv=None, tta="none"):
    """[(path, [(class, probability), ...top]), ...] for every readable image under `paths`, by a run folder or
    an export-model folder (`source`); with tta "flip", each image's probabilities averaged with its mirror's.

    With `cam_dir`, also draws each image's heatmaps there (cnn.inference.cams: by `cam_method` on `cam_layer`, of
    the top class and of the true class where `labels_csv` lists the image); the options are checked
    before any image is read.
    """
    if cam_dir is None and (cam_layer is not None or labels_csv is not None):
        raise UsageError("--cam-layer and --labels serve --cam's heatmaps; add --cam OUTDIR")
    predictor = open_run(source, tta=tta)
    draw_cams = None if cam_dir is None else cam_writer(predictor, source, cam_dir, layer=cam_layer,
                                                        method=cam_method, labels_csv=labels_csv)
    readable, probs, images = predict_files(predictor, paths, batch_size, keep_images=draw_cams is not None)
    if draw_cams is not None:
        draw_cams(readable, images, probs)
    return [(str(path), preds) for path, preds in zip(readable, top_classes(probs, predictor.classes, top))]


def format_table(results):
    """A tabulate table: one row per image, a class/probability column pair per rank."""
    from tabulate import tabulate

    ranks = max(len(preds) for _, preds in results)
    headers = ["image"] + [h for r in range(1, ranks + 1) for h in (f"top{r}", f"p{r}")]
    rows = [[path] + [v for pair in preds for v in pair] for path, preds in results]
    return tabulate(rows, headers=headers, floatfmt=".3f")


def format_csv(results):
    """CSV rows path,rank,class,probability (rank 1 = most likely)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "rank", "class", "probability"])
    for path, preds in results:
        writer.writerows([path, rank, name, f"{p:.6f}"] for rank, (name, p) in enumerate(preds, start=1))
    return buffer.getvalue().rstrip("\n")


def format_json(results):
    """A JSON list of {path, predictions: [{class, probability}, ...]}."""
    return json.dumps([prediction_record(path, preds) for path, preds in results], indent=2)


FORMATS = {"table": format_table, "csv": format_csv, "json": format_json}
