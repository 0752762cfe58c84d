"""Seconds per epoch of a frozen pretrained backbone's head training, with and without the feature cache.

    flock /work/exp/train.lock python benchmarks/bench_transfer.py --labels labels.csv --work DIR [--epochs 2]
                                                                   [--json results.json]

For Xception at 150 and 299 px and MobileNetV2 at 224 (weights none: the time does not depend on the weight
values, and this machine has no internet), it trains `train-cnn --arch A --image-size S --weights none
--augment none --cache memory --epochs E` twice into DIR, with `--feature-cache off` (the whole model runs
every epoch) and on (the backbone runs once, before the first epoch, then only the head). Both keep the
decoded images in memory, so the difference is the backbone's work alone. Reported per case: the seconds
before the first epoch (building, and for the cache its one backbone pass), each epoch's seconds, the last
epoch's as the per-epoch figure, and the ratio off/on; and what ten epochs cost each way.
"""
import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.atomic import write_json  # noqa: E402

CASES = ("xception:150", "xception:299", "mobilenetv2:224")  # ARCH:SIZE


def epoch_clock():
    """A Keras callback noting when training begins and each epoch ends (time.perf_counter)."""
    import keras

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.begin, self.ends = time.perf_counter(), []

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter())

    return Clock()


def timed_run(labels, out, arch, size, epochs, feature_cache):
    """(seconds before the first epoch, [seconds per epoch]) of one training run into `out`."""
    from cnn.training.train import train

    shutil.rmtree(out, ignore_errors=True)
    clock = epoch_clock()
    started = time.perf_counter()
    train(out=str(out), labels=labels, arch=arch, image_size=size, weights="none", augment="none", cache="memory",
          epochs=epochs, patience=epochs, feature_cache=feature_cache, callbacks=[clock])
    marks = [clock.begin] + clock.ends
    return clock.begin - started, [b - a for a, b in zip(marks, marks[1:])]


def measure(labels, work, epochs, cases=CASES):
    """One row per ARCH:SIZE case: per-epoch seconds with and without the cache, their ratio, ten epochs each way."""
    rows = []
    for case in cases:
        arch, size = case.split(":")[0], int(case.split(":")[1])
        row = {"arch": arch, "image_size": size}
        for cache in ("off", "on"):
            setup, per_epoch = timed_run(labels, Path(work) / f"{arch}-{size}-{cache}", arch, size, epochs, cache)
            row[f"setup_s_cache_{cache}"] = round(setup, 2)
            row[f"epochs_s_cache_{cache}"] = [round(s, 2) for s in per_epoch]
            row[f"epoch_s_cache_{cache}"] = round(per_epoch[-1], 2)
            print(f"bench_transfer: {arch} {size} px, feature cache {cache}: setup {setup:.1f} s, epochs "
                  f"{', '.join(f'{s:.1f}' for s in per_epoch)} s", file=sys.stderr, flush=True)
        row["epoch_ratio_off_on"] = round(row["epoch_s_cache_off"] / row["epoch_s_cache_on"], 1)
        for cache in ("off", "on"):
            row[f"ten_epochs_s_cache_{cache}"] = round(row[f"setup_s_cache_{cache}"] + sum(
                row[f"epochs_s_cache_{cache}"][:1]) + 9 * row[f"epoch_s_cache_{cache}"], 1)
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", required=True, help="labels CSV of clothing-dataset-small (train/val/test)")
    parser.add_argument("--work", required=True, help="folder for the benchmark's run folders (emptied per case)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (the last one is the figure)")
    parser.add_argument("--cases", nargs="+", default=CASES, metavar="ARCH:SIZE", help="what to time")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    rows = measure(args.labels, args.work, args.epochs, args.cases)
    columns = ["arch", "image_size", "setup_s_cache_off", "epoch_s_cache_off", "setup_s_cache_on", "epoch_s_cache_on",
               "epoch_ratio_off_on", "ten_epochs_s_cache_off", "ten_epochs_s_cache_on"]
    print(tabulate([[r[c] for c in columns] for r in rows], headers=columns))
    if args.json:
        import tensorflow as tf

        write_json(args.json, {"rows": rows, "epochs": args.epochs, "labels": args.labels, "cpus": os.cpu_count(),
                               "machine": platform.platform(), "tensorflow": tf.__version__,
                               "precision": json.loads(next(Path(args.work).glob("*-on/config.json"))
                                                       .read_text())["precision"]})


if __name__ == "__main__":
    main()
