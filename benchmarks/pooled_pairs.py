"""One lever's paired differences pooled over several settings: each setting is a generalisation.json written by
benchmarks/generalisation_table.py, where the lever's seeds pair with its baseline's on one machine; the pairs of
all settings together give one mean difference and its 95% interval per figure (each pair stays within its own
machine, image size and precision; the pooled interval asks whether the lever helps across those settings).

    python benchmarks/pooled_pairs.py --setting at128/generalisation.json:whiten128:default128 \
        --setting whiten256/generalisation.json:whiten:default --out whiten256/pooled.json
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cnn.experiments.stats import paired_difference  # noqa: E402

FIGURES = ("test_top1", "test_balanced_accuracy", "outside_top1", "outside_balanced_accuracy")


def pairs(setting):
    """[(setting, seed, lever's figures, baseline's figures)] of one FILE:LEVER:BASELINE, by common seed."""
    path, lever, baseline = setting.rsplit(":", 2)
    runs = json.loads(Path(path).read_text())["runs"]
    return [(setting, seed, runs[lever][seed], runs[baseline][seed])
            for seed in sorted(set(runs[lever]) & set(runs[baseline]))]


def pooled(settings):
    """Every pair's differences and, per figure, the pooled paired difference (mean, 95% interval)."""
    found = [p for s in settings for p in pairs(s)]
    return {"pairs": [{"setting": s, "seed": seed, **{k: lever[k] - base[k] for k in FIGURES}}
                      for s, seed, lever, base in found],
            "pooled": {k: paired_difference([p[2][k] for p in found], [p[3][k] for p in found]) for k in FIGURES}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", action="append", required=True, metavar="FILE:LEVER:BASELINE")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    args = parser.parse_args()
    result = pooled(args.setting)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for figure, d in result["pooled"].items():
        print(f"{figure:27s} {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] over {d['n']} pairs"
              f"{'' if d['distinguishable'] else ' (not distinguishable)'}")


if __name__ == "__main__":
    main()
