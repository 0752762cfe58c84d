"""Training speed of the default CNN from tensors in memory vs from JPEG files, and the loader alone.

    flock /tmp/cpu-heavy.lock python benchmarks/bench_training.py [--data DIR] [--rounds 3] [--steps 20]
                                                                  [--json results.json]

For each precision (float32, mixed_bfloat16), with build_cnn at 256x256, batch 32, one class per
folder of DATA/train (10 for clothing-dataset-small), it measures in images/s:
  (a) memory: training steps fed the same random batch from a cached tf.data (no decoding at all);
  (b) files:  training steps fed by flow_from_dataframe reading DATA/train/<class>/*.jpg (shuffled);
  (c) loader: flow_from_dataframe iterated alone, without a model;
  (d) augmented: as (b) with the default recipe's augmentation (flip and a random-resized crop), which
      runs as stateless ops in the loader's parallel map; (d)/(a) is what augmentation on by default keeps.
(b)/(a) is the share of the in-memory speed that training from files keeps: the loader is not the
bottleneck when it is close to 1. The ratio is also given per CPU-second of this process, which
other jobs sharing the machine cannot distort (on an idle machine whose cores training keeps busy,
the two agree). (a) and (b) alternate in rounds so that drift in the machine's
load hits both alike; each block starts a fresh iterator and leaves its first step out of the timing.
"""
import argparse
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from cnn.training.recipes import RECIPES  # noqa: E402
from common.atomic import write_json  # noqa: E402
DATA = REPO.parent / "shared" / "data" / "clothing-dataset-small"
PRECISIONS = ("float32", "mixed_bfloat16")


def train_frame(data):
    """path/label rows for DATA/train/<class>/*.jpg, the class being the folder name."""
    rows = [(str(p), p.parent.name) for p in sorted(Path(data, "train").glob("*/*.jpg"))]
    if not rows:
        raise SystemExit(f"bench_training: error: no JPEG files under {data}/train/<class>/")
    return pd.DataFrame(rows, columns=["path", "label"])


def memory_dataset(batch_size, size, num_classes):
    """One random 0-255 batch with one-hot labels, repeated forever: training input at no loading cost."""
    import tensorflow as tf

    images = tf.random.stateless_uniform((batch_size, size, size, 3), (0, 1), 0, 255)
    labels = tf.one_hot(tf.range(batch_size) % num_classes, num_classes)
    return tf.data.Dataset.from_tensors((images, labels)).repeat()


def files_dataset(df, batch_size, size, augment=None):
    """The training split as train-cnn reads it (shuffled, no cache), repeated across epochs."""
    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe

    batching = Batching(batch_size=batch_size, shuffle=True, seed=0, drop_remainder=True, augment=augment)
    return flow_from_dataframe(df, target_size=(size, size), batching=batching).dataset.repeat()


def timed_steps(model, dataset, steps):
    """(images/s, images per CPU-second of this process) of `steps` training steps on a fresh iterator,
    its first (start-up) step excluded. The CPU-time figure is what other processes cannot distort."""
    iterator = iter(dataset)
    model.train_on_batch(*next(iterator))
    images, start, cpu = 0, time.perf_counter(), time.process_time()
    for _ in range(steps):
        x, y = next(iterator)
        model.train_on_batch(x, y)
        images += int(x.shape[0])
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu)


def loader_speed(dataset, batches):
    """Images/s of iterating the loader alone, the first batch (pipeline start-up) excluded."""
    iterator = iter(dataset)
    next(iterator)
    images, start = 0, time.perf_counter()
    for _ in range(batches):
        images += int(next(iterator)[0].shape[0])
    return images / (time.perf_counter() - start)


def measure(precision, df, args):
    """(a), (b), (c) and (b)/(a) for one precision policy."""
    import keras

    from cnn.models.architectures import build_cnn
    from cnn.training.precision import apply_precision

    apply_precision(precision)
    num_classes = df.label.nunique()
    model = build_cnn(num_classes, (args.image_size, args.image_size, 3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    memory = memory_dataset(args.batch_size, args.image_size, num_classes)
    files = files_dataset(df, args.batch_size, args.image_size)
    augmented = files_dataset(df, args.batch_size, args.image_size, augment=RECIPES["default"]["augment"])
    a, b, d = [], [], []
    for r in range(args.rounds):
        a.append(timed_steps(model, memory, args.steps))
        b.append(timed_steps(model, files, args.steps))
        d.append(timed_steps(model, augmented, args.steps))
        print(f"bench_training: {precision} round {r + 1}/{args.rounds}: memory {a[-1][0]:.1f}, "
              f"files {b[-1][0]:.1f}, augmented {d[-1][0]:.1f} images/s", file=sys.stderr, flush=True)
    mean = lambda pairs, i: sum(p[i] for p in pairs) / len(pairs)  # noqa: E731 - wall (0) or CPU (1)
    return {"precision": precision, "memory_images_per_s": mean(a, 0), "files_images_per_s": mean(b, 0),
            "loader_images_per_s": loader_speed(files, args.loader_batches),
            "files_over_memory": mean(b, 0) / mean(a, 0),
            "files_over_memory_cpu_time": mean(b, 1) / mean(a, 1),
            "augmented_images_per_s": mean(d, 0), "augmented_over_memory": mean(d, 0) / mean(a, 0),
            "augmented_over_memory_cpu_time": mean(d, 1) / mean(a, 1),
            "memory_rounds": a, "files_rounds": b, "augmented_rounds": d}  # per round: [images/s, images per CPU-s]


def machine():
    """What the figures were measured on."""
    import tensorflow as tf

    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "tensorflow": tf.__version__, "python": platform.python_version()}


def main(argv=None):
    """Measure (a), (b), (c) for each precision and print the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="dataset root holding train/<class>/*.jpg")
    parser.add_argument("--image-size", type=int, default=256, help="square input side, pixels")
    parser.add_argument("--batch-size", type=int, default=32, help="images per training step")
    parser.add_argument("--rounds", type=int, default=3, help="alternating (memory, files) rounds per precision")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per source per round")
    parser.add_argument("--loader-batches", type=int, default=40, help="timed batches for the loader alone")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                        help="Keras dtype policies to measure")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    from common.tfenv import quiet_tensorflow

    quiet_tensorflow()
    df = train_frame(args.data)
    start = time.perf_counter()
    results = [measure(p, df, args) for p in args.precisions]
    rows = [[r["precision"], r["memory_images_per_s"], r["files_images_per_s"], r["loader_images_per_s"],
             f"{100 * r['files_over_memory']:.1f}%", f"{100 * r['files_over_memory_cpu_time']:.1f}%",
             r["augmented_images_per_s"], f"{100 * r['augmented_over_memory']:.1f}%"] for r in results]
    print(tabulate(rows, headers=["precision", "(a) memory img/s", "(b) files img/s", "(c) loader img/s",
                                  "(b)/(a)", "(b)/(a) per CPU-s", "(d) augmented img/s", "(d)/(a)"], floatfmt=".1f"))
    print(f"{len(df)} training images, {df.label.nunique()} classes, {args.image_size}x{args.image_size}, "
          f"batch {args.batch_size}; {time.perf_counter() - start:.0f} s in all")
    if args.json:
        write_json(args.json, {"machine": machine(), "options": {k: str(v) for k, v in vars(args).items()},
                               "images": len(df), "classes": int(df.label.nunique()), "results": results})


if __name__ == "__main__":
    main()
