"""Classify image files with a trained run: each image's top classes with probabilities (predict-cnn)."""
import csv
import io
import json
import sys
from pathlib import Path

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


def predict_images(run_dir, paths, top=3, batch_size=32):
    """[(path, [(class, probability), ...top]), ...] for every readable image under `paths`."""
    import numpy as np

    run = load_run(run_dir)
    classes = run.classes
    readable, images = [], []
    for path in find_images(paths):
        try:
            images.append(load_image(path, run.image_size))
            readable.append(path)
        except Exception as e:  # noqa: BLE001 - any decode failure means "unreadable image"
            warn(f"cannot read {path} ({type(e).__name__}), skipped")
    if not images:
        raise UsageError("no readable image among the given paths")
    probs = np.concatenate([np.asarray(run.model.predict_on_batch(np.stack(images[i:i + batch_size])))
                            for i in range(0, len(images), batch_size)])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :min(top, len(classes))]
    return [(str(path), [(classes[j], float(p[j])) for j in best]) for path, p, best in zip(readable, probs, order)]


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
