"""Accuracy of mixed bfloat16 against float32 on real data, over several seeds.

    python benchmarks/compare_precision.py LABELS_CSV [--seeds 0 1 2] [--epochs 8] [--image-size 128]
                                           [--out runs/precision] [--json results.json]

Trains the default model once per (precision, seed) with train-cnn, reads each run's metrics.json and
prints test top-1 per run and mean +- sample standard deviation per precision, so the gap between the
two precisions can be read against the spread the seed alone causes. Run from the folder the labels
CSV's paths resolve from.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

PRECISIONS = ("float32", "mixed_bfloat16")


def train(labels, out, precision, seed, epochs, image_size):
    """One train-cnn run; returns (test top-1, wall seconds)."""
    cmd = [sys.executable, "-m", "cnn", "train", "--labels", str(labels), "--out", str(out),
           "--precision", precision, "--seed", str(seed), "--epochs", str(epochs),
           "--image-size", str(image_size)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return json.loads((Path(out) / "metrics.json").read_text())["top1"], seconds


def summarise(rows):
    """Per precision: runs, mean and sample sd of top-1, mean wall time."""
    table = []
    for precision in PRECISIONS:
        acc = [r["top1"] for r in rows if r["precision"] == precision]
        secs = [r["seconds"] for r in rows if r["precision"] == precision]
        table.append({"precision": precision, "runs": len(acc), "top1_mean": statistics.mean(acc),
                      "top1_sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                      "seconds_mean": statistics.mean(secs)})
    return table


def main(argv=None):
    """Train every (seed, precision) pair, then print the per-run and per-precision table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("labels", help="labels CSV with train/val/test splits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per run (early stopping still applies)")
    parser.add_argument("--image-size", type=int, default=128, help="input side in pixels")
    parser.add_argument("--out", default="runs/precision", help="parent folder of the runs")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        for precision in PRECISIONS:
            out = Path(args.out) / f"{precision}-seed{seed}"
            top1, seconds = train(args.labels, out, precision, seed, args.epochs, args.image_size)
            rows.append({"precision": precision, "seed": seed, "top1": top1, "seconds": seconds})
            print(f"{precision:15s} seed {seed}: test top-1 {top1:.4f} in {seconds:.0f} s", flush=True)
    summary = summarise(rows)
    print(tabulate(summary, headers="keys", floatfmt=".4f"))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": rows, "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
