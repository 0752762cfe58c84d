"""Loader and training speed from TFRecord shards (pack-shards) vs loose JPEG files vs memory.

    flock /work/exp/train.lock python benchmarks/bench_shards.py --labels labels.csv --work /tmp/bench-shards \
        [--synthetic 2000] [--image-size 256] [--rounds 3] [--steps 20] [--json results.json]

Two datasets: the train split of --labels (clothing-dataset-small's 3,068 photos), and --synthetic N generated
DeepFashion-sized JPEGs (400x533, quality 90, written into --work, never committed). Each is packed twice
with cnn.data.pack (JPEG q95 and --raw) at --image-size, timing the pack. Then, for float32 and the precision
`--precision auto` picks here (mixed_bfloat16 on AVX-512 BF16 CPUs), with the card's CNN at batch 32:
  loader alone:  images/s of the files loader, the JPEG shards and the raw shards iterated without a model;
  training:      images/s of training steps fed from memory (one cached batch: no loading at all), the
                 files, the JPEG shards and the raw shards, in alternating rounds so that drift in the
                 machine's load hits all alike; each source's share of the memory speed is the figure the
                 issue asks for (goal: shards >= 97% in bfloat16 on 2 cores).
The timing helpers are benchmarks/bench_training.py's.
"""
import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_training import loader_speed, machine, memory_dataset, timed_steps  # noqa: E402
from common.atomic import write_json  # noqa: E402

SOURCES = ("memory", "files", "shards_jpeg", "shards_raw")
SYNTHETIC_SHAPE = (533, 400)  # height, width of a DeepFashion-sized photo


def synthetic_csv(work, n, classes=10):
    """Write n smooth random 400x533 JPEGs (a photo's decoding cost) and their labels CSV under `work`."""
    import numpy as np
    from PIL import Image

    folder, csv = work / "synthetic", work / "synthetic.csv"
    if csv.is_file():
        return csv
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        path = folder / f"class{i % classes}" / f"img_{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (17, 13, 3), dtype=np.uint8)  # large blobs plus fine noise, like a photo
        image = np.asarray(Image.fromarray(coarse).resize(SYNTHETIC_SHAPE[::-1], Image.BICUBIC), dtype=np.int16)
        image = np.clip(image + rng.integers(-12, 13, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(path, quality=90)
        rows.append((str(path), f"class{i % classes}", f"class{i % classes}", "train"))
    pd.DataFrame(rows, columns=["path", "label", "group", "split"]).to_csv(csv, index=False)
    return csv


def packed(labels, work, name, size):
    """Pack the train rows of `labels` as JPEG and raw shards (reused when already there); pack images/s."""
    from cnn.data.pack import pack_shards

    train_only = work / f"{name}-train.csv"
    df = pd.read_csv(labels)
    df[df.split == "train"].to_csv(train_only, index=False)
    out, rates = {}, {}
    for encoding in ("jpeg", "raw"):
        folder = work / f"{name}-{encoding}-{size}"
        start = time.perf_counter()
        index = pack_shards(train_only, folder, image_size=size, raw=encoding == "raw")
        rates[encoding] = index["images"]["train"] / (time.perf_counter() - start)
        out[encoding] = folder
    return df[df.split == "train"], out, rates


def sources(df, shards, size, batch):
    """The four training inputs, repeated: memory, files loader, JPEG shards, raw shards."""
    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe
    from cnn.data.shards import flow_from_shards

    classes = sorted(set(df.label))
    common = dict(batching=Batching(batch_size=batch, shuffle=True, seed=0, drop_remainder=True))
    return {"memory": memory_dataset(batch, size, len(classes)),
            "files": flow_from_dataframe(df, classes=classes, target_size=(size, size), **common).dataset.repeat(),
            "shards_jpeg": flow_from_shards(shards["jpeg"], ["train"], classes, **common).dataset.repeat(),
            "shards_raw": flow_from_shards(shards["raw"], ["train"], classes, **common).dataset.repeat()}


def measure(precision, df, shards, args):
    """Loader-alone and training images/s of each source for one precision, and each one's share of memory's."""
    import keras

    from cnn.models.architectures import build_cnn
    from cnn.training.precision import apply_precision

    apply_precision(precision)
    inputs = sources(df, shards, args.image_size, args.batch_size)
    model = build_cnn(df.label.nunique(), (args.image_size, args.image_size, 3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    rounds = {name: [] for name in SOURCES}
    for r in range(args.rounds):
        for name in SOURCES:
            rounds[name].append(timed_steps(model, inputs[name], args.steps))
        print(f"bench_shards: {precision} round {r + 1}/{args.rounds}: "
              + ", ".join(f"{n} {rounds[n][-1][0]:.1f}" for n in SOURCES) + " images/s", file=sys.stderr, flush=True)
    mean = {n: sum(p[0] for p in rounds[n]) / len(rounds[n]) for n in SOURCES}
    cpu = {n: sum(p[1] for p in rounds[n]) / len(rounds[n]) for n in SOURCES}
    return {"precision": precision, "train_images_per_s": mean,
            "share_of_memory": {n: mean[n] / mean["memory"] for n in SOURCES},
            "share_of_memory_cpu_time": {n: cpu[n] / cpu["memory"] for n in SOURCES},
            "loader_images_per_s": {n: loader_speed(inputs[n], args.loader_batches) for n in SOURCES[1:]},
            "rounds": rounds}


def bench_dataset(name, labels, args):
    """Pack one dataset, then measure every precision on it."""
    from cnn.training.precision import resolve_precision

    df, shards, pack_rates = packed(labels, args.work, name, args.image_size)
    precisions = list(dict.fromkeys(["float32", resolve_precision("auto")]))
    results = [measure(p, df, shards, args) for p in precisions]
    rows = [[name, r["precision"], s, r["train_images_per_s"][s], f"{100 * r['share_of_memory'][s]:.1f}%",
             f"{100 * r['share_of_memory_cpu_time'][s]:.1f}%", r["loader_images_per_s"].get(s, float("nan"))]
            for r in results for s in SOURCES]
    print(tabulate(rows, headers=["dataset", "precision", "source", "train img/s", "of memory", "of memory per CPU-s",
                                  "loader alone img/s"], floatfmt=".1f"))
    print(f"{name}: {len(df)} training images; packed at {pack_rates['jpeg']:.1f} (JPEG) and "
          f"{pack_rates['raw']:.1f} (raw) images/s")
    return {"images": len(df), "classes": int(df.label.nunique()), "pack_images_per_s": pack_rates,
            "results": results}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--labels", type=Path, help="labels CSV of real photos (its train split); None: skip")
    parser.add_argument("--synthetic", type=int, default=2000, help="DeepFashion-sized JPEGs to generate (0: skip)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-shards"), help="folder for generated images "
                        "and shards (reused by a rerun)")
    parser.add_argument("--image-size", type=int, default=256, help="square input side, pixels")
    parser.add_argument("--batch-size", type=int, default=32, help="images per training step")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds over the sources")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per source per round")
    parser.add_argument("--loader-batches", type=int, default=40, help="timed batches for each loader alone")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    from common.tfenv import quiet_tensorflow

    quiet_tensorflow()
    args.work.mkdir(parents=True, exist_ok=True)
    start, figures = time.perf_counter(), {}
    if args.labels:
        figures["labels"] = bench_dataset("labels", args.labels, args)
    if args.synthetic:
        figures["synthetic"] = bench_dataset("synthetic", synthetic_csv(args.work, args.synthetic), args)
    print(f"bench_shards: {time.perf_counter() - start:.0f} s in all", file=sys.stderr)
    if args.json:
        write_json(args.json, {"machine": machine(), "options": {k: str(v) for k, v in vars(args).items()},
                               "datasets": figures})


if __name__ == "__main__":
    main()
