"""Images/s of the two loaders decoding JPEG files into 256-px training batches (flip, crop=0.2): tf.data
(cnn.data.loader, all cores) and the loader without TensorFlow (cnn.data.numpy_loader) on 1..N threads, as
Keras's PyDataset workers run it. Per core is what sizes a GPU machine's CPU: a GPU step's images/s divided by
it is the cores the loader needs.

    python benchmarks/bench_loaders.py --labels LABELS.csv [--images 512] [--out results.json]
"""
import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

SIZE, BATCH, AUGMENT = 256, 32, {"flip": True, "crop": 0.2}


def tf_data_rate(rows, classes):
    """Images/s of one pass of the tf.data loader (parallel on every core)."""
    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe

    loaded = flow_from_dataframe(rows, classes=classes, target_size=(SIZE, SIZE),
                                 batching=Batching(batch_size=BATCH, shuffle=True, seed=0, augment=dict(AUGMENT)))
    started = time.perf_counter()
    count = sum(len(labels) for _, labels in loaded.dataset)
    return count / (time.perf_counter() - started)


def numpy_rate(rows, classes, threads):
    """Images/s of one pass of the numpy loader, its batches built on `threads` threads."""
    from cnn.data.batching import Batching
    from cnn.data.image_batches import image_batches
    from cnn.data.loader import SkipLog

    batches = image_batches(rows.path.tolist(), [classes.index(v) for v in rows.label], len(classes), (SIZE, SIZE),
                            SkipLog(), Batching(batch_size=BATCH, shuffle=True, seed=0, augment=dict(AUGMENT)))
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        count = sum(len(labels) for _, labels in pool.map(batches.__getitem__, range(len(batches))))
    return count / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", required=True)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    df = pd.read_csv(args.labels)
    rows = df[df.split == "train"].head(args.images)
    classes = sorted(set(df.label))
    cores = os.cpu_count()
    figures = {"images": len(rows), "size": SIZE, "cores": cores, "tf_data_all_cores": tf_data_rate(rows, classes)}
    for threads in range(1, cores + 1):
        figures[f"numpy_{threads}_threads"] = numpy_rate(rows, classes, threads)
    figures["numpy_per_core"] = figures[f"numpy_{cores}_threads"] / cores
    figures["tf_data_per_core"] = figures["tf_data_all_cores"] / cores
    for name, value in figures.items():
        print(f"{name:>22}: {value:,.1f}" if isinstance(value, float) else f"{name:>22}: {value}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
