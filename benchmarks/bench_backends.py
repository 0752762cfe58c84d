"""Training throughput on Keras's TensorFlow and JAX backends, one run on one machine: every figure comparable.

    python benchmarks/bench_backends.py [--photos DIR] [--steps 8] [--json PATH]

For the card's network (`--arch cnn`) and cnn5 at 256 px, batch 32, in float32 and mixed bfloat16, on each
backend (each in a process of its own: Keras fixes its backend at import): training images/s as `fit` runs it
from in-memory batches, and from image files through the loader (tf.data decoding clothing-dataset-small's
train photos, no cache, as train-cnn reads them on either backend). Each figure is the second of two epochs of
--steps steps (the first compiles). Prints a table; --json writes the figures.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_limits import ARCHS, BATCH, PRECISIONS, SIZE, build, cpu_name, training_rate  # noqa: E402
from common.atomic import write_json  # noqa: E402

BACKENDS = ("tensorflow", "jax")
PHOTOS = HERE.parents[1] / "shared" / "data" / "clothing-dataset-small" / "train"


def files_rate(model, photos, steps):
    """Images/s of model.fit reading `photos` (<class>/*.jpg) through the loader: the second of two epochs."""
    import keras

    from bench_limits import photo_rows
    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe

    rows = photo_rows(photos)
    classes = sorted(set(rows.label))[:model.outputs[0].shape[-1]]
    rows = rows[rows.label.isin(classes)]
    data = flow_from_dataframe(rows, classes=classes, target_size=(SIZE, SIZE),
                               batching=Batching(batch_size=BATCH, shuffle=True, seed=0)).dataset.repeat()
    times = []
    timer = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: times.append(time.perf_counter()),
                                           on_epoch_end=lambda e, logs: times.append(time.perf_counter()))
    model.fit(data, epochs=2, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return steps * BATCH / (times[3] - times[2])


def measure_here(photos, steps):
    """Every (arch, precision) case on this process's backend: one JSON line each on stdout."""
    import keras

    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    for arch in ARCHS:
        for precision in PRECISIONS:
            model, flops = build(arch, precision)
            memory = training_rate(tf, model, steps)
            files = files_rate(model, photos, steps)
            print(json.dumps({"backend": keras.backend.backend(), "arch": arch, "precision": precision,
                              "memory_images_per_s": round(memory, 2), "files_images_per_s": round(files, 2),
                              "train_gflops_per_s": round(3 * flops * memory / 1e9, 1)}), flush=True)


def measure(backend, photos, steps):
    """Run measure_here in a new process on `backend`; its figures."""
    out = subprocess.run([sys.executable, __file__, "--photos", str(photos), "--steps", str(steps), "--here"],
                         env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def table(rows):
    """The figures side by side, JAX's as a ratio to TensorFlow's on the same case."""
    tf_rate = {(r["arch"], r["precision"]): r for r in rows if r["backend"] == "tensorflow"}
    lines = [f"{'arch':6} {'precision':15} {'backend':11} {'memory img/s':>13} {'files img/s':>12} {'vs TF (memory)':>15}"]
    for r in rows:
        base = tf_rate.get((r["arch"], r["precision"]))
        ratio = f"{r['memory_images_per_s'] / base['memory_images_per_s']:.2f}x" if base else "-"
        lines.append(f"{r['arch']:6} {r['precision']:15} {r['backend']:11} {r['memory_images_per_s']:13.1f} "
                     f"{r['files_images_per_s']:12.1f} {ratio:>15}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="a folder of <class>/*.jpg photos")
    parser.add_argument("--steps", type=int, default=8, help="training steps per timed epoch")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)  # the per-backend worker
    args = parser.parse_args(argv)
    if args.here:
        return measure_here(args.photos, args.steps)
    rows = [row for backend in BACKENDS for row in measure(backend, args.photos, args.steps)]
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; {SIZE} px, batch {BATCH}, {args.steps} steps")
    print(table(rows))
    if args.json:
        write_json(args.json, {"machine": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                               "size": SIZE, "batch": BATCH, "steps": args.steps, "figures": rows})


if __name__ == "__main__":
    main()
