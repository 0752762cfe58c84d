"""The README's cost table: one DeepFashion epoch from measured images/s, and a projection to more machines.

    python benchmarks/cost_table.py [--shards bench_shards.json] [--multiworker bench_multiworker.json]
                                    [--images 209222] [--bandwidth-gbit 10] [--workers 1 2 4 8]

Measured rows: the epoch of --images training images at each training rate bench_shards.py measured (per
dataset, precision and source) and at bench_multiworker.py's 1- and N-worker loopback rates. Projected rows
(N machines like this one, each with its own 2 cores): every worker keeps a batch of 32, so the global batch
is 32N (scale the learning rate with it, after a warm-up); a step costs one machine's compute for 32 images
plus one ring all-reduce of the float32 gradients, 2(N-1)/N x 4 bytes x parameters through each machine's link
at --bandwidth-gbit, plus the all-reduce's fixed cost measured on loopback. Nothing else (stragglers, input
stalls, the chief's checkpoint) is modelled, so these are lower bounds on the time.
"""
import argparse
import json
import math

DEEPFASHION_TRAIN = 209222  # DeepFashion's category benchmark: training images (of 289,222)
PER_WORKER_BATCH = 32


def epoch_minutes(images, images_per_s):
    return images / images_per_s / 60


def measured_rows(shards, multiworker, images):
    """(what, precision, images/s, epoch minutes) for every measured training rate."""
    rows = []
    for name, dataset in (shards or {}).get("datasets", {}).items():
        for r in dataset["results"]:
            for source, rate in r["train_images_per_s"].items():
                rows.append((f"2-core CPU, {name} photos, from {source}", r["precision"], rate,
                             epoch_minutes(images, rate)))
    for r in (multiworker or {}).get("results", []):
        one = sum(x["images_per_s"] for x in r["one_worker"]) / len(r["one_worker"])
        many = r["workers"]
        rows.append(("1 worker (multiworker loop), memory", r["precision"], one, epoch_minutes(images, one)))
        rows.append((f"{many['workers']} workers on loopback (same 2 cores), memory", r["precision"],
                     many["images_per_s"], epoch_minutes(images, many["images_per_s"])))
    return rows


def projected_rows(multiworker, images, bandwidth_gbit, workers):
    """(N, precision, images/s, epoch minutes, efficiency) for N machines, from the 1-worker rate and all-reduce."""
    rows = []
    for r in (multiworker or {}).get("results", []):
        one = sum(x["images_per_s"] for x in r["one_worker"]) / len(r["one_worker"])
        compute = PER_WORKER_BATCH / one  # seconds a machine computes its 32 images
        gradient_bytes = 4 * r["allreduce"]["parameters"]
        fixed = r["allreduce"]["seconds_per_step"]  # loopback: no wire, so latency and reduction work
        for n in workers:
            wire = 0 if n == 1 else 2 * (n - 1) / n * gradient_bytes / (bandwidth_gbit * 1e9 / 8)
            step = compute + (wire + fixed if n > 1 else 0)
            rate = n * PER_WORKER_BATCH / step
            rows.append((n, r["precision"], rate, epoch_minutes(images, rate), rate / (n * one)))
    return rows


def main(argv=None):
    from tabulate import tabulate

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--shards", help="bench_shards.py's JSON")
    parser.add_argument("--multiworker", help="bench_multiworker.py's JSON")
    parser.add_argument("--images", type=int, default=DEEPFASHION_TRAIN, help="training images in an epoch")
    parser.add_argument("--bandwidth-gbit", type=float, default=10, help="each machine's network link, Gbit/s")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8], help="machines to project")
    args = parser.parse_args(argv)
    load = lambda path: json.load(open(path)) if path else None  # noqa: E731
    shards, multiworker = load(args.shards), load(args.multiworker)
    print(tabulate(measured_rows(shards, multiworker, args.images), tablefmt="github", floatfmt=".1f",
                   headers=["measured", "precision", "images/s", f"epoch of {args.images:,} (min)"]))
    print()
    print(tabulate([(n, p, rate, minutes, f"{100 * eff:.0f}%") for n, p, rate, minutes, eff
                    in projected_rows(multiworker, args.images, args.bandwidth_gbit, args.workers)],
                   tablefmt="github", floatfmt=".1f",
                   headers=["machines (projected)", "precision", "images/s", "epoch (min)", "scaling efficiency"]))
    steps = math.ceil(args.images / PER_WORKER_BATCH)
    print(f"\n{steps:,} steps an epoch on one machine at batch {PER_WORKER_BATCH}; N machines: {steps:,}/N steps "
          f"of {PER_WORKER_BATCH}N images; links of {args.bandwidth_gbit:g} Gbit/s")


if __name__ == "__main__":
    main()
