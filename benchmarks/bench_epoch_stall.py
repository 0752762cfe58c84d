"""Idle pauses in training: tf.data's autotuning model on (TensorFlow's default) against off (this project's loader).

    python benchmarks/bench_epoch_stall.py --labels labels.csv --work DIR [--image-size 128] [--epochs 8]
                                           [--json results.json]

Trains `train-cnn --cache memory --precision mixed_bfloat16` twice into DIR, once with the loader as it is
(`cnn.data.loader.prefetched` turns the autotuning model off) and once with the model on, as TensorFlow has it by
default. Per epoch it records the wall seconds and the process's CPU seconds per wall second. Keras drops
an iterator every epoch (the training one, and the validation one whenever Python frees it), and with the
model on TensorFlow waits in the iterator's destructor for the model's optimiser thread to finish a timed
sleep while the cores stay idle: the epoch takes longer and its CPU per wall second drops. Training itself
is bit-identical either way. Run it on an otherwise idle machine: another process would use the idle cores.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_training import machine  # noqa: E402
from common.atomic import write_json  # noqa: E402


def cpu_seconds():
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def clock(rows):
    """A Keras callback appending {epoch, epoch_s, cpu_per_wall} to `rows`."""
    import keras

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.begin, self.cpu = time.perf_counter(), cpu_seconds()

        def on_epoch_end(self, epoch, logs=None):
            wall = time.perf_counter() - self.begin
            rows.append({"epoch": epoch + 1, "epoch_s": round(wall, 1),
                         "cpu_per_wall": round((cpu_seconds() - self.cpu) / wall, 2)})

    return Clock()


def autotune_model_on():
    """Make the loader keep tf.data's autotuning model, as TensorFlow does by default."""
    import cnn.data.loader
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    cnn.data.loader.prefetched = lambda ds: ds.prefetch(tf.data.AUTOTUNE)


def measure(labels, work, image_size, epochs, model_on):
    """Per-epoch rows of one training run."""
    from cnn.training.train import train

    if model_on:
        autotune_model_on()
    rows = []
    train(out=str(Path(work) / ("model-on" if model_on else "model-off")), labels=labels, epochs=epochs,
          image_size=image_size, cache="memory", precision="mixed_bfloat16", patience=epochs, callbacks=[clock(rows)])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", required=True, help="labels CSV of clothing-dataset-small")
    parser.add_argument("--work", required=True, help="folder for the two run folders (must not hold them)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--model", choices=("on", "off"), default=None,
                        help="one case only (each case in its own process: the 'on' patch cannot be undone)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    cases = [args.model] if args.model else ["off", "on"]
    if len(cases) > 1:  # run each case in a fresh process, so the patch of one cannot leak into the other
        results = {}
        for case in cases:
            out = Path(args.work) / f"{case}.json"
            subprocess.run([sys.executable, __file__, "--labels", args.labels, "--work", args.work, "--image-size",
                            str(args.image_size), "--epochs", str(args.epochs), "--model", case, "--json", str(out)],
                           check=True)
            results[case] = json.loads(out.read_text())["epochs"]
        report(results, args)
        return
    rows = measure(args.labels, args.work, args.image_size, args.epochs, args.model == "on")
    write_json(args.json, {"machine": machine(), "model": args.model, "epochs": rows})


def report(results, args):
    """The per-epoch table of both cases, their totals, and the JSON."""
    table = [[off["epoch"], off["epoch_s"], on["epoch_s"], off["cpu_per_wall"], on["cpu_per_wall"]]
             for off, on in zip(results["off"], results["on"])]
    print(tabulate(table, headers=["epoch", "seconds, model off", "seconds, model on", "CPU/wall, off",
                                   "CPU/wall, on"]))
    totals = {case: round(sum(r["epoch_s"] for r in rows), 1) for case, rows in results.items()}
    print(f"all epochs: {totals['off']} s with the model off, {totals['on']} s on ({totals['on'] / totals['off']:.2f}x)")
    if args.json:
        write_json(args.json, {"machine": machine(), "image_size": args.image_size, "epochs": args.epochs,
                               "results": results, "totals": totals})


if __name__ == "__main__":
    main()
