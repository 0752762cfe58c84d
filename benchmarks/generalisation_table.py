"""Test split against photos from outside the dataset: one row per recipe (a --repeats folder), its test and
outside top-1 and balanced accuracy over seeds, and each recipe's paired difference from the baseline on both.

    python benchmarks/generalisation_table.py --recipe default=RUNS/default --recipe look=RUNS/look \
        --outside outside --out benchmarks/results/generalisation

A run's outside figures are its metrics.json's also_scored[NAME] (train-cnn --also-score) or, for runs trained
before that option, its eval-NAME-all/metrics.json (evaluate-cnn RUN --labels NAME.csv --split all). The first
--recipe is the baseline. Writes DIR/generalisation.json (every seed) and DIR/outside_vs_test.png (one point per
recipe and seed, the diagonal drawn) and prints the table.
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cnn.experiments.stats import describe, paired_difference  # noqa: E402

FIGURES = ("top1", "balanced_accuracy", "macro_f1")


def outside_figures(run, name):
    """The run's figures on the outside CSV `name`, from also_scored or its eval-NAME-all/ report; None if absent."""
    metrics = json.loads((run / "metrics.json").read_text())
    if name in metrics.get("also_scored", {}):
        return metrics["also_scored"][name]
    report = run / f"eval-{name}-all" / "metrics.json"
    return json.loads(report.read_text()) if report.is_file() else None


def seeds(folder, name):
    """{seed: {test_<figure>, outside_<figure>}} of a --repeats folder's finished seeds with outside figures."""
    rows = {}
    for run in sorted(Path(folder).glob("seed-*")):
        outside = outside_figures(run, name) if (run / "finished.json").is_file() else None
        if outside is not None:
            test = json.loads((run / "metrics.json").read_text())
            rows[int(run.name.split("-")[1])] = {**{f"test_{k}": test[k] for k in FIGURES},
                                                 **{f"outside_{k}": outside[k] for k in FIGURES}}
    return rows


def table(recipes):
    """One row per recipe: n, mean +- sd of each figure, the test-outside gap, paired differences vs the first."""
    base_name, base = recipes[0]
    rows = []
    for name, runs in recipes:
        row = {"recipe": name, "seeds": sorted(runs)}
        for key in (f"{where}_{k}" for where in ("test", "outside") for k in FIGURES):
            stats = describe([r[key] for r in runs.values()])
            row[key], row[f"{key}_sd"] = stats["mean"], stats["sd"]
        row["gap_top1"] = row["test_top1"] - row["outside_top1"]
        common = sorted(set(runs) & set(base))
        if name != base_name and len(common) > 1:  # one pair has no interval (and JSON no infinity)
            for key in ("test_top1", "outside_top1", "outside_balanced_accuracy"):
                diff = paired_difference([runs[s][key] for s in common], [base[s][key] for s in common])
                row[f"{key}_vs_{base_name}"] = diff
        rows.append(row)
    return rows


def print_table(rows):
    from tabulate import tabulate

    def versus(row, key):
        diff = next((v for k, v in row.items() if k.startswith(f"{key}_vs_")), None)
        return "" if diff is None else (f"{diff['mean']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]"
                                        f"{'' if diff['distinguishable'] else ' n.d.'}")

    print(tabulate([[r["recipe"], len(r["seeds"]), f"{r['test_top1']:.3f} +- {r['test_top1_sd']:.3f}",
                     f"{r['outside_top1']:.3f} +- {r['outside_top1_sd']:.3f}", f"{r['test_balanced_accuracy']:.3f}",
                     f"{r['outside_balanced_accuracy']:.3f}", f"{r['gap_top1']:+.3f}", versus(r, "test_top1"),
                     versus(r, "outside_top1")] for r in rows],
                   headers=["recipe", "n", "test top-1", "outside top-1", "test bal.", "outside bal.",
                            "test - outside", "test vs baseline", "outside vs baseline"]))


def plot(recipes, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for i, (name, runs) in enumerate(recipes):
        ax.scatter([r["test_top1"] for r in runs.values()], [r["outside_top1"] for r in runs.values()],
                   color=f"C{i}", label=name)
    ax.plot([0.5, 1.0], [0.5, 1.0], color="grey", linewidth=0.8, label="outside = test")
    ax.set_xlabel("test split top-1")
    ax.set_ylabel("outside photos top-1")
    ax.set_title("Outside against test, one point per seed")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", action="append", required=True, metavar="NAME=FOLDER",
                        help="a --repeats folder; the first is the baseline")
    parser.add_argument("--outside", default="outside", help="the outside labels CSV's name (its file stem)")
    parser.add_argument("--out", required=True, help="folder for generalisation.json and outside_vs_test.png")
    args = parser.parse_args()
    recipes = [(name, seeds(folder, args.outside)) for name, _, folder in (r.partition("=") for r in args.recipe)]
    recipes = [(name, runs) for name, runs in recipes if runs]
    rows = table(recipes)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "generalisation.json").write_text(json.dumps(
        {"rows": rows, "runs": {name: runs for name, runs in recipes}}, indent=2) + "\n")
    plot(recipes, Path(args.out) / "outside_vs_test.png")
    print_table(rows)


if __name__ == "__main__":
    main()
