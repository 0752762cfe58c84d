"""Top-1 under evaluate-cnn --shifts for several runs side by side: which recipe keeps more of its accuracy on photos
that do not look like the dataset's.

    python benchmarks/shift_table.py "default 128 px=RUNS/steps128/epochs=20" "long=RUNS/long256/long" \
        "ensemble of the 3 long=RUNS/long256/long/ensemble" --out DIR

Each NAME=FOLDER is a --repeats folder (its seed-*/ runs, each scored with --shifts if it was not yet) or one
scored folder (a run, or a --repeats parent's ensemble/, holding shifts/shifts.json). Run from the folder the runs
were trained in (their labels CSV's paths resolve from there). Prints the table (top-1 per shift, the mean over
seeds; each seed's none and mean-shifted top-1 in the JSON) and writes DIR/shift_table.json and DIR/shift_table.png.
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cnn.evaluation.evaluate import evaluate_run  # noqa: E402
from cnn.evaluation.shifts import FOLDER, SHIFTS as NAMES  # noqa: E402


def shift_rows(folder):
    """{shift: top-1} of a scored folder, scoring it first when its shifts/shifts.json is missing."""
    report = Path(folder) / FOLDER / "shifts.json"
    if not report.is_file():
        run = Path(folder).parent if Path(folder).name == "ensemble" else Path(folder)
        evaluate_run(run, shifts=True)
    return {row["shift"]: row["top1"] for row in json.loads(report.read_text())["shifts"]}


def recipe_rows(source):
    """One {shift: top-1} per seed of a --repeats folder, or the one of a scored folder."""
    members = sorted(Path(source).glob("seed-*/"))
    return [shift_rows(folder) for folder in members or [Path(source)]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=FOLDER")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    table = {}
    for spec in args.runs:
        name, _, source = spec.partition("=")
        seeds = recipe_rows(source)
        table[name] = {"seeds": len(seeds), **{s: sum(r[s] for r in seeds) / len(seeds) for s in NAMES}}
        table[name]["mean_shifted"] = sum(table[name][s] for s in NAMES if s != "none") / (len(NAMES) - 1)
        table[name]["per_seed"] = [{"none": r["none"], "mean_shifted": sum(r[s] for s in NAMES if s != "none")
                                    / (len(NAMES) - 1)} for r in seeds]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "shift_table.json").write_text(json.dumps(table, indent=1) + "\n")
    heads = (f"{n} ({t['seeds']} seed{'s' * (t['seeds'] > 1)})" for n, t in table.items())
    print("| shift | " + " | ".join(heads) + " |")
    print("|---" * (len(table) + 1) + "|")
    for shift in (*NAMES, "mean_shifted"):
        print(f"| {shift} | " + " | ".join(f"{t[shift]:.3f}" for t in table.values()) + " |")
    plot(table, out / "shift_table.png")


def plot(table, path):
    """Grouped bars: top-1 under each shift, one colour per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shifts = list(NAMES)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(table)
    for i, (name, row) in enumerate(table.items()):
        ax.bar(np.arange(len(shifts)) + i * width, [row[s] for s in shifts], width, label=name)
    ax.set_xticks(np.arange(len(shifts)) + 0.4 - width / 2, shifts, rotation=20)
    ax.set_ylabel("test top-1")
    ax.set_ylim(0.4, 0.9)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
