"""Test top-1 against cost: one point per recipe (the mean over its seeds with a 95% t interval), its cost in
multiples of the default run's training time on the machine that trained them.

    python benchmarks/recipe_tradeoff.py --baseline default=benchmarks/recipes_256.json:cnn5 \
        --baseline-seconds 850 --recipe long=RUNS/long \
        --single "ensemble of 3 long=RUNS/long/ensemble:5.5" --single "student=RUNS/student:5.5" --out DIR

--baseline is a --repeats folder (seed-*/metrics.json) or FILE.json:KEY (its runs[KEY][seed] metrics, as
benchmarks/recipes_256.json holds them); --baseline-seconds the default run's training seconds on this machine
(default: the baseline's own mean); --recipe another --repeats folder, compared with the baseline seed by seed;
--single one evaluated folder (metrics.json) whose cost is its own train_seconds, if any, plus EXTRA multiples
(an ensemble costs its members; a distilled student its teacher too). --cost NAME=X sets a row's cost where its
runs' wall time does not tell it (runs paused or sharing the cores: X from their own epoch times). --outside NAME
adds each row's figures on the extra labels CSV NAME (train-cnn --also-score NAME.csv, or evaluate-cnn's
eval-NAME-all/ report) and a second panel, outside top-1 against cost. Writes DIR/tradeoff.json and
DIR/tradeoff.png and prints the table.
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cnn.experiments.stats import describe, half_width, paired_difference  # noqa: E402
from generalisation_table import outside_figures  # noqa: E402

METRICS = ("top1", "balanced_accuracy", "macro_f1")


def seeds(source):
    """{seed: metrics} of a --repeats folder, or of FILE.json:KEY (runs[KEY] of a results file)."""
    if ".json:" in source:
        path, _, key = source.rpartition(":")
        return {int(seed): metrics for seed, metrics in json.loads(Path(path).read_text())["runs"][key].items()}
    return {int(p.parent.name.split("-")[1]): json.loads(p.read_text())
            for p in Path(source).glob("seed-*/metrics.json")}


def summary(values):
    """Mean, sd, n, the 95% interval's half width and the values themselves."""
    return {**describe(values), "half_interval": half_width(values), "values": values}


def recipe_row(name, folder, baseline_seconds, baseline=None, outside=None):
    """A --repeats folder's metrics over its seeds, its cost, and its paired difference from `baseline`; with
    `outside`, the same figures on that extra labels CSV under outside_<metric>."""
    runs = seeds(folder)
    row = {"name": name, "folder": str(folder), "seeds": sorted(runs),
           "cost": describe([r["train_seconds"] for r in runs.values()])["mean"] / baseline_seconds,
           "train_seconds": [runs[s]["train_seconds"] for s in sorted(runs)]}
    for metric in METRICS:
        row[metric] = summary([runs[s][metric] for s in sorted(runs)])
    if outside and Path(folder).is_dir():  # a results file (FILE.json:KEY) holds no outside figures
        scored = {s: outside_figures(Path(folder) / f"seed-{s}", outside) for s in sorted(runs)}
        missing = [s for s, figures in scored.items() if figures is None]
        if missing:  # a mean over other seeds than the test figure's would not compare
            print(f"{name}: no {outside} figures for seeds {missing}: no outside point", file=sys.stderr)
        else:
            row.update({f"outside_{m}": summary([figures[m] for figures in scored.values()]) for m in METRICS})
    if baseline is not None:
        shared = sorted(set(runs) & set(baseline))
        row["vs_baseline"] = paired_difference([runs[s]["top1"] for s in shared],
                                               [baseline[s]["top1"] for s in shared])
    return row


def single_row(spec, baseline_seconds, outside=None):
    """One evaluated folder (an ensemble, a student) as a point without an interval."""
    name, _, rest = spec.partition("=")
    folder, _, extra = rest.rpartition(":")
    metrics = json.loads((Path(folder) / "metrics.json").read_text())
    own = metrics.get("train_seconds", 0.0) / baseline_seconds
    row = {"name": name, "folder": folder, "cost": own + float(extra), "train_seconds": metrics.get("train_seconds"),
           **point(metrics)}
    figures = outside_figures(Path(folder), outside) if outside else None
    if figures:
        row.update(point(figures, prefix="outside_"))
    return row


def point(figures, prefix=""):
    """One model's METRICS from `figures` as summaries without an interval, keyed PREFIX<metric>."""
    return {f"{prefix}{m}": {"mean": figures[m], "half_interval": 0.0, "n": 1} for m in METRICS}


def draw(rows, path):
    """tradeoff.png: each row's mean top-1 with its 95% interval against its cost; a second panel for the
    outside figures where the rows have them (on the same scale, so the gap reads across)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("top1", "test split")] + ([("outside_top1", "outside photos")]
                                          if any("outside_top1" in row for row in rows) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.2), sharey=True, squeeze=False)
    for ax, (key, where) in zip(axes[0], panels):
        for row in (row for row in rows if key in row):
            ax.errorbar(row["cost"], row[key]["mean"], yerr=row[key]["half_interval"], fmt="o", capsize=4)
            ax.annotate(f"{row['name']} ({row[key]['mean']:.3f})", (row["cost"], row[key]["mean"]),
                        textcoords="offset points", xytext=(6, -12), fontsize=8)
        ax.set_xlim(0.5, 1.5 * max(row["cost"] for row in rows))  # room for the right-most label
        ax.set_xlabel("training cost (multiples of the default run's time)")
        ax.set_title(f"{where}: top-1 against cost")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("top-1 (mean over seeds, 95% interval)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="NAME=FOLDER or NAME=FILE.json:KEY: the seeds compared with")
    parser.add_argument("--baseline-seconds", type=float, help="the default run's training seconds on this machine")
    parser.add_argument("--recipe", action="append", default=[], help="NAME=FOLDER: another --repeats folder")
    parser.add_argument("--single", action="append", default=[], help="NAME=FOLDER:EXTRA: one evaluated folder")
    parser.add_argument("--cost", action="append", default=[], help="NAME=X: a row's cost in default runs")
    parser.add_argument("--outside", help="NAME: also the figures on the extra labels CSV NAME.csv")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    name, _, folder = args.baseline.partition("=")
    baseline = seeds(folder)
    seconds = args.baseline_seconds or describe([r["train_seconds"] for r in baseline.values()])["mean"]
    rows = [recipe_row(name, folder, seconds, outside=args.outside)]
    rows[0]["cost"] = 1.0  # by definition, also where its seeds trained on another machine
    rows += [recipe_row(*spec.split("=", 1), seconds, baseline, args.outside) for spec in args.recipe]
    rows += [single_row(spec, seconds, args.outside) for spec in args.single]
    costs = dict(spec.split("=", 1) for spec in args.cost)
    unknown = sorted(set(costs) - {row["name"] for row in rows})
    if unknown:
        parser.error(f"--cost names no row: {unknown}")
    for row in rows:
        row["cost"] = float(costs.get(row["name"], row["cost"]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tradeoff.json").write_text(json.dumps({"baseline_seconds": seconds, "rows": rows}, indent=1))
    draw(rows, out / "tradeoff.png")
    for row in rows:
        versus = row.get("vs_baseline")
        paired = (f"  vs baseline {versus['mean']:+.3f} [{versus['low']:+.3f}, {versus['high']:+.3f}]"
                  if versus else "")
        print(f"{row['name']:>24}: cost {row['cost']:.2f}x  top-1 {row['top1']['mean']:.3f} +- "
              f"{row['top1'].get('sd', 0):.3f}  balanced {row['balanced_accuracy']['mean']:.3f}  "
              f"macro F1 {row['macro_f1']['mean']:.3f}{paired}{outside_line(row)}")


def outside_line(row):
    """The row's outside figures for the printed table ('' without them)."""
    if "outside_top1" not in row:
        return ""
    return (f"  outside top-1 {row['outside_top1']['mean']:.3f} +- {row['outside_top1'].get('sd', 0):.3f}  "
            f"balanced {row['outside_balanced_accuracy']['mean']:.3f}")


if __name__ == "__main__":
    main()
