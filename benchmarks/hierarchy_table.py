"""The README's flat-vs-cascade table from a finished `sweep-cnn --grid hierarchy=none,...` folder.

    python benchmarks/hierarchy_table.py SWEEP_DIR [SWEEP_DIR ...] [--json OUT.json]

sweep.json has each configuration's test top-1 per seed and the paired difference; this adds, from each
seed's metrics.json, what only a hierarchical run reports (the hard cascade's top-1, the coarse model's
accuracy, the share of errors already wrong at the coarse level) and the training time per run, and
prints one markdown row per configuration.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

FIGURES = ("top1", "hard_top1", "coarse_top1", "balanced_accuracy", "macro_f1", "hard_errors_wrong_parent",
           "train_seconds")


def mean_sd(values):
    """`m +- sd` to 3 decimals (blank without values)."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {sd:.3f}"


def rows_of(sweep):
    """One dict per configuration: the per-seed figures and the sweep's paired difference."""
    summary = json.loads((sweep / "sweep.json").read_text())
    rows = []
    for config in summary["configurations"]:
        seeds = sorted(sweep.glob(f"{config['configuration']}/seed-*/metrics.json"))
        per_seed = [json.loads(p.read_text()) for p in seeds]
        row = {"sweep": str(sweep), "configuration": config["configuration"], "seeds": len(per_seed),
               **{k: [m.get(k) for m in per_seed] for k in FIGURES}}
        if "top1_diff" in config:
            row["top1_vs_baseline"] = [config["top1_diff"], config["top1_diff_low"], config["top1_diff_high"],
                                       config["verdict"]]
        rows.append(row)
    return rows


def markdown(row):
    """The README's table row."""
    diff = row.get("top1_vs_baseline")
    diff_text = f"{diff[0]:+.3f} [{diff[1]:+.3f}, {diff[2]:+.3f}]: {diff[3]}" if diff else ""
    seconds = [s for s in row["train_seconds"] if s is not None]
    per_run = f"{statistics.mean(seconds):,.0f} s" if seconds else ""
    cells = [row["configuration"], str(row["seeds"]), mean_sd(row["top1"]), mean_sd(row["hard_top1"]),
             mean_sd(row["coarse_top1"]), mean_sd(row["balanced_accuracy"]), mean_sd(row["macro_f1"]),
             mean_sd(row["hard_errors_wrong_parent"]), per_run, diff_text]
    return "| " + " | ".join(cells) + " |"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep-cnn output folders")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = [row for sweep in args.sweeps for row in rows_of(sweep)]
    print("| configuration | seeds | top-1 (soft) | hard top-1 | coarse acc. | balanced acc. | macro F1 | "
          "errors wrong at coarse (hard) | training per run | top-1 vs flat (paired, 95%) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(markdown(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
