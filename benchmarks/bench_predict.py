"""Prediction speed of a trained run and of its exports: a folder of photos in batches, and one image at a time.

    python benchmarks/bench_predict.py RUN [--images DIR] [--batch-size 32] [--json results.json]

For the run's Keras model and each export that works here (SavedModel; TFLite float32, float16, int8;
ONNX when its extra is installed), it prints: images/s over DIR (default: clothing-dataset-small's test
photos) read through the training loader in batches, the warm single-image latency (median of 20), the
model file's size, and top-1 agreement with the Keras model.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.atomic import write_json  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "clothing-dataset-small" / "test"
EXPORTS = [("savedmodel", "none"), ("tflite", "none"), ("tflite", "float16"), ("tflite", "int8"), ("onnx", "none")]


def batches(folder, size, batch_size):
    """The folder's images as predict-cnn reads them: the training loader's tf.data pipeline, in batches."""
    import pandas as pd

    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe
    from common.schema import is_image_name

    paths = sorted(str(p) for p in Path(folder).rglob("*") if is_image_name(p.name))
    loaded = flow_from_dataframe(pd.DataFrame({"path": paths}), y_col=None, target_size=(size, size),
                                 batching=Batching(batch_size=batch_size))
    return loaded.dataset


def size_of(path):
    """Bytes of a file, or of every file under a folder."""
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(predictor, data, reference=None):
    """images/s reading and predicting the folder (after a warm-up batch), warm 1-image latency, top-1 agreement."""
    import numpy as np

    first = next(iter(data)).numpy()
    predictor.predict_on_batch(first)
    start = time.perf_counter()
    probs = np.concatenate([predictor.predict_on_batch(batch.numpy()) for batch in data])
    rate = len(probs) / (time.perf_counter() - start)
    one = first[:1]
    predictor.predict_on_batch(one)
    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        predictor.predict_on_batch(one)
        latencies.append(time.perf_counter() - started)
    agreement = None if reference is None else float(np.mean(probs.argmax(1) == reference.argmax(1)))
    return {"images_per_s": rate, "latency_ms": 1000 * statistics.median(latencies), "agreement": agreement}, probs


def main(argv=None):
    """Export the run in every format that works here, then time each against the Keras model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a train-cnn run folder")
    parser.add_argument("--images", default=str(DATA), help="folder of photos to classify")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    from tabulate import tabulate

    from cnn.inference.export import MODEL_FILES, export_run
    from cnn.runs.predictor import open_run
    from cnn.runfolder import MODEL
    from common.errors import UsageError

    keras_model = open_run(args.run)
    data = batches(args.images, keras_model.image_size, args.batch_size)
    result, reference = measure(keras_model, data)
    rows = [{"format": "keras", "quantize": "none", "bytes": size_of(Path(args.run) / MODEL), **result}]
    with tempfile.TemporaryDirectory() as folder:
        for fmt, quantize in EXPORTS:
            try:
                out = export_run(args.run, fmt=fmt, quantize=quantize, out=Path(folder) / f"{fmt}-{quantize}")
            except UsageError as error:
                print(f"bench_predict: {fmt} {quantize} skipped: {error}", file=sys.stderr)
                continue
            result, _ = measure(open_run(out), data, reference)
            rows.append({"format": fmt, "quantize": quantize, "bytes": size_of(out / MODEL_FILES[fmt]), **result})
    print(tabulate([[r["format"], r["quantize"], f"{r['bytes'] / 2**20:.1f} MiB", f"{r['images_per_s']:.0f}",
                     f"{r['latency_ms']:.1f}", "" if r["agreement"] is None else f"{100 * r['agreement']:.1f}%"]
                    for r in rows], headers=["format", "quantize", "model size", "images/s (batches)",
                                             "1-image latency ms", "top-1 agreement"]))
    images = len(reference)
    print(f"{images} images from {args.images}, batch {args.batch_size}, {keras_model.image_size} px")
    if args.json:
        write_json(args.json, {"images": images, "rows": rows})


if __name__ == "__main__":
    main()
