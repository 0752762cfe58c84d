"""What --init carries over: a model trained on some categories, started from on others, against from scratch.

    flock /work/exp/train.lock python benchmarks/bench_init_transfer.py --labels labels.csv --work DIR
                                      [--arch cnn] [--image-size 64] [--epochs 15] [--seeds 0 1 2] [--json out.json]

The labels CSV's classes are cut in two by size (the larger half, alternately, is the source): the source
dataset is every row of one half, the target the other half, with their own train/val/test splits. Per seed:
train the source model, then on the target train three ways with the same split, recipe and seed: from
scratch, `--init SOURCE` (every layer trains), and `--init SOURCE --freeze-backbone` (only the classifier:
the source's features as they are). Reported: each run's test top-1 and macro F1 on the target's test split,
their mean +- sd over seeds, and the paired difference from scratch (mean and 95% interval over seeds).
"""
import argparse
import sys
from pathlib import Path

import pandas as pd
from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from cnn.experiments.stats import describe, paired_difference  # noqa: E402
from common.atomic import write_json  # noqa: E402

WAYS = {"scratch": {}, "init": {"init": None}, "init_frozen": {"init": None, "freeze_backbone": True}}


def split_classes(labels):
    """(source classes, target classes): sorted by training rows, dealt alternately, the larger to the source."""
    counts = labels[labels.split == "train"].label.value_counts()
    ranked = list(counts.index)
    return sorted(ranked[0::2]), sorted(ranked[1::2])


def write_subsets(labels_csv, work):
    """source.csv and target.csv under `work`; returns (their paths, source classes, target classes)."""
    labels = pd.read_csv(labels_csv)
    source, target = split_classes(labels)
    paths = {}
    for name, classes in (("source", source), ("target", target)):
        paths[name] = str(Path(work) / f"{name}.csv")
        labels[labels.label.isin(classes)].to_csv(paths[name], index=False)
    return paths, source, target


def run_seed(paths, work, seed, options):
    """Test metrics of the three ways on the target for one seed (the source run trained first)."""
    from cnn.training.train import train

    source_run = Path(work) / f"source-seed-{seed}"
    if not (source_run / "metrics.json").is_file():
        train(out=str(source_run), labels=paths["source"], seed=seed, **options)
    results = {}
    for way, extra in WAYS.items():
        extra = {k: str(source_run) if k == "init" else v for k, v in extra.items()}
        _, metrics = train(out=str(Path(work) / f"{way}-seed-{seed}"), labels=paths["target"], seed=seed,
                           **options, **extra)
        results[way] = {"top1": metrics["top1"], "macro_f1": metrics["macro_f1"], "best_epoch": metrics["best_epoch"]}
    return results


def summarise(per_seed):
    """mean/sd per way and metric, and paired differences from scratch."""
    summary = {}
    for way in WAYS:
        for metric in ("top1", "macro_f1"):
            values = [r[way][metric] for r in per_seed.values()]
            summary[f"{way}_{metric}"] = describe(values)
            if way != "scratch":
                summary[f"{way}_minus_scratch_{metric}"] = paired_difference(
                    values, [r["scratch"][metric] for r in per_seed.values()])
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", required=True, help="labels CSV (path,label,split) of the whole dataset")
    parser.add_argument("--work", required=True, help="folder for the subsets and run folders (reruns keep "
                        "finished source runs)")
    parser.add_argument("--arch", default="cnn")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    paths, source, target = write_subsets(args.labels, args.work)
    options = dict(arch=args.arch, image_size=args.image_size, epochs=args.epochs, cache="memory")
    per_seed = {seed: run_seed(paths, args.work, seed, options) for seed in args.seeds}
    summary = summarise(per_seed)
    print(tabulate([[seed] + [r[w]["top1"] for w in WAYS] for seed, r in per_seed.items()],
                   headers=["seed"] + [f"{w} top-1" for w in WAYS], floatfmt=".3f"))
    print(tabulate([[k, v["mean"], v.get("sd"), v.get("low"), v.get("high")] for k, v in summary.items()],
                   headers=["figure", "mean", "sd", "95% low", "95% high"], floatfmt=".3f"))
    if args.json:
        write_json(args.json, {"source_classes": source, "target_classes": target, "options": options,
                               "labels": args.labels, "per_seed": per_seed, "summary": summary})


if __name__ == "__main__":
    main()
