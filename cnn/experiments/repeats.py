"""train-cnn --repeats N: the same run with seeds seed..seed+N-1 into OUT/seed-<s>/, then a summary over seeds."""
import sys
from pathlib import Path

from cnn.evaluation.html_report import write_html_report
from cnn.experiments.stats import describe
from cnn.runfolder import METRICS, load_config, read_json, run_finished, run_identity
from cnn.training import log
from cnn.training.options import TrainOptions
from cnn.training.runstate import check_same_run
from cnn.training.train import train
from common.atomic import write_csv, write_json

METRICS_SUMMARISED = ("top1", "top3", "top5", "balanced_accuracy", "macro_f1")
ALSO_FIGURES = ("top1", "balanced_accuracy", "macro_f1")  # what the summary keeps of each --also-score CSV
SUMMARY = "summary"  # OUT/summary.csv and OUT/summary.json


def train_repeats(out, repeats, options, *, seed=0):
    """Train `repeats` seeds of the typed `options` into `out`/seed-<s>/ and summarise them.

    A finished seed is kept when it was trained on the same options and labels CSV (else refused); an
    interrupted one continues. Returns the summary dict.
    """
    runs = []
    for i, s in enumerate(range(seed, seed + repeats), start=1):
        folder = seed_folder(out, s)
        if run_finished(folder):
            check_same_run(folder, TrainOptions(**{**options, "seed": s}))
            log(f"run {i} of {repeats} (seed {s}) already finished, kept")
        else:
            log(f"run {i} of {repeats} (seed {s}) into {folder}")
            train(out=folder, **{**options, "seed": s})
        runs.append((s, {**read_json(folder / METRICS), "code": run_identity(load_config(folder))}))
    return write_summary(Path(out), runs)


def seed_folder(out, seed):
    """The run folder of one seed: OUT/seed-<s>/."""
    return Path(out) / f"seed-{seed}"


def finished_seeds(out, repeats, seed=0):
    """How many of the seeds seed..seed+repeats-1 already have a finished run in `out`."""
    return sum(run_finished(seed_folder(out, s)) for s in range(seed, seed + repeats))


def summarise(runs):
    """{metric: describe(values over seeds)}, the per-run rows, and the code versions they come from, from
    [(seed, metrics dict with the run's code identity), ...]; each --also-score CSV adds <name>_top1,
    <name>_balanced_accuracy and <name>_macro_f1 beside the test split's."""
    rows = [{"seed": s, **{k: m[k] for k in METRICS_SUMMARISED}, **also_scored_columns(m),
             "epochs_run": m.get("epochs_run"), "train_seconds": m.get("train_seconds"), "code": m.get("code")}
            for s, m in runs]
    extra = [k for k in rows[0] if k not in METRICS_SUMMARISED and k.endswith(ALSO_FIGURES)
             and all(k in row for row in rows)]
    return {"metrics": {k: describe([row[k] for row in rows]) for k in (*METRICS_SUMMARISED, *extra)},
            "runs": rows, "code": code_versions(rows)}


def also_scored_columns(metrics):
    """{<name>_top1, ...} of a run's also_scored figures (train-cnn --also-score)."""
    return {f"{name}_{k}": figures[k] for name, figures in metrics.get("also_scored", {}).items()
            for k in ALSO_FIGURES}


def code_versions(rows):
    """The distinct code identities (cnn.runfolder.run_identity) of runs with a "code" entry, sorted."""
    return sorted({str(row["code"]) for row in rows})


def mixed_code_warning(rows):
    """A warning line when `rows` (runs with a "code" identity) come from more than one version of the code
    or its packages: such results are kept, but flagged, since a change of code can move them."""
    versions = code_versions(rows)
    if len(versions) < 2:
        return None
    return (f"warning: these {len(rows)} runs come from {len(versions)} versions of the code or its "
            f"packages ({' | '.join(versions)}); compare them with care, or retrain the odd ones into a new --out")


def format_summary(summary):
    """The printed table: one row per metric with mean +- sd, min, max and n."""
    from tabulate import tabulate

    rows = [[k, f"{d['mean']:.4f} +- {d['sd']:.4f}", f"{d['min']:.4f}", f"{d['max']:.4f}", d["n"]]
            for k, d in summary["metrics"].items()]
    return tabulate(rows, headers=["test metric", "mean +- sd", "min", "max", "n"])


def write_summary(out, runs):
    """OUT/summary.json (everything) and OUT/summary.csv (one row per seed), and print the table."""
    import pandas as pd

    summary = summarise(runs)
    write_json(Path(out) / f"{SUMMARY}.json", summary)
    write_csv(Path(out) / f"{SUMMARY}.csv", pd.DataFrame(summary["runs"]), index=False)
    write_html_report(out)
    print(format_summary(summary), file=sys.stderr)
    warning = mixed_code_warning(summary["runs"])
    if warning:
        log(warning)
    return summary
