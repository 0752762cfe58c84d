"""Classify image files with a trained run: each image's top classes with probabilities (predict-cnn)."""
import csv
import io
import json
import sys
from pathlib import Path

from cnn.cams import cam_writer
from cnn.gradcam import DEFAULT_METHOD
from cnn.runfolder import load_run
from common.errors import UsageError
from common.schema import is_image_name


def warn(message):
    """A warning line on stderr; prediction goes on with the other images."""
    print(f"predict-cnn: warning: {message}", file=sys.stderr, flush=True)


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


def load_image(path, image_size):
    """One image as a float32 (size, size, 3) array of 0-255 pixels, decoded as the training loader does."""
    from cnn.data import decode_and_resize

    return decode_and_resize(str(path), (image_size, image_size))


def read_images(paths, image_size):
    """(readable paths, float32 (n, size, size, 3) array) for the image files under `paths`; unreadable ones
    are warned about and skipped, and none readable is a UsageError."""
    import numpy as np

    readable, images = [], []
    for path in find_images(paths):
        try:
            images.append(load_image(path, image_size))
            readable.append(path)
        except Exception as e:  # noqa: BLE001 - any decode failure means "unreadable image"
            warn(f"cannot read {path} ({type(e).__name__}), skipped")
    if not images:
        raise UsageError("no readable image among the given paths")
    return readable, np.stack(images)


def predict_images(run_dir, paths, top=3, batch_size=32, cam_dir=None, cam_layer=None, cam_method=DEFAULT_METHOD,
                   labels_csv=None):
    """[(path, [(class, probability), ...top]), ...] for every readable image under `paths`.

    With `cam_dir`, also draws each image's heatmaps there (cnn.cams: by `cam_method` on `cam_layer`, of
    the top class and of the true class where `labels_csv` lists the image); the options are checked
    before any image is read.
    """
    import numpy as np

    if cam_dir is None and (cam_layer is not None or labels_csv is not None):
        raise UsageError("--cam-layer and --labels serve --cam's heatmaps; add --cam OUTDIR")
    run = load_run(run_dir)
    draw_cams = None if cam_dir is None else cam_writer(run, cam_dir, layer=cam_layer, method=cam_method,
                                                        labels_csv=labels_csv)
    readable, images = read_images(paths, run.image_size)
    probs = np.concatenate([np.asarray(run.model.predict_on_batch(images[i:i + batch_size]))
                            for i in range(0, len(images), batch_size)])
    if draw_cams is not None:
        draw_cams(readable, images, probs)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :min(top, len(run.classes))]
    return [(str(path), [(run.classes[j], float(p[j])) for j in best]) for path, p, best in zip(readable, probs, order)]


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
    return json.dumps([{"path": path, "predictions": [{"class": n, "probability": p} for n, p in preds]}
                       for path, preds in results], indent=2)


FORMATS = {"table": format_table, "csv": format_csv, "json": format_json}
