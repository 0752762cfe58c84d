"""sweep-cnn: train every configuration of a grid of train-cnn options over the same seeds, then compare them.

Each configuration is a `train-cnn --repeats` folder (OUT/<key=value,...>/seed-<s>/); the table gives each
one's test metrics as mean +- sd, and with a baseline the paired difference over the same seeds with its
95% t interval, so a gain smaller than the seed-to-seed noise is called "not distinguishable".
"""
import itertools
import time
from dataclasses import fields
from pathlib import Path

from cnn.evaluation.html_report import write_html_report
from cnn.experiments.repeats import (ALSO_FIGURES, code_versions, finished_seeds, mixed_code_warning,
                                     train_repeats)
from cnn.experiments.stats import describe, half_width, paired_difference
from cnn.training.options import TrainOptions
from common.atomic import atomic_path, write_csv, write_json
from common.console import writer
from common.errors import UsageError

say = writer("sweep-cnn")

FIELDS = {f.name: f for f in fields(TrainOptions)}
COMPARED = ("top1", "balanced_accuracy", "macro_f1")


def parse_value(name, text):
    """A grid value typed like its TrainOptions field (bools accept true/false/1/0)."""
    kind = FIELDS[name].type
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise UsageError(f"--grid {name}: {text!r} is not true or false")
        return text.lower() in ("true", "1", "yes")
    try:
        return kind(text)
    except ValueError:
        raise UsageError(f"--grid {name}: {text!r} is not a valid {kind.__name__}") from None


def option_name(key):
    """The TrainOptions field a grid or baseline key names: `--batch-size`, `batch-size` -> batch_size."""
    return key.strip().lstrip("-").replace("-", "_")


def option_of(item, what="--grid"):
    """(option name, its text) of a KEY=... item; a key that is no train-cnn option (or is the seed's or the
    labels CSV's, which a sweep fixes) is a user error."""
    key, sep, values = item.partition("=")
    name = option_name(key)
    if not sep or name not in FIELDS or name in ("seed", "labels"):
        known = ", ".join(sorted(set(FIELDS) - {"seed", "labels"}))
        raise UsageError(f"{what} {item!r}: give KEY=V1,V2 with KEY a train-cnn option ({known}); seeds come "
                         f"from --repeats")
    return name, values


def parse_grid(items):
    """{option: [values]} from `KEY=V1,V2` items (`KEY=V1;V2` where a value holds commas, as an --augment
    spec does); unknown keys and empty values are user errors."""
    grid = {}
    for item in items:
        name, values = option_of(item)
        texts = [v.strip() for v in values.split(";" if ";" in values else ",")]
        if not all(texts):
            raise UsageError(f"--grid {item!r}: an empty value; list values separated by commas, e.g. {name}=a,b")
        grid[name] = [parse_value(name, t) for t in texts]
    if not grid:
        raise UsageError("give at least one --grid KEY=V1,V2")
    return grid


def baseline_values(baseline):
    """{option: value} of --baseline KEY=V,KEY2=V2; a comma not followed by an option's KEY= belongs to the
    value before it, so `augment=flip,crop=0.2` is one value."""
    pairs = []
    for piece in baseline.split(","):
        if pairs and not ("=" in piece and option_name(piece.partition("=")[0]) in FIELDS):
            pairs[-1] += "," + piece
        else:
            pairs.append(piece)
    values = {}
    for pair in pairs:
        name, text = option_of(pair, "--baseline")
        values[name] = parse_value(name, text.strip())
    return values


def configurations(grid):
    """Every combination of the grid's values, as option dicts, in grid order."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def folder_name(config):
    """A configuration's folder: key=value pairs joined by commas (slashes kept out)."""
    return ",".join(f"{k}={v}" for k, v in config.items()).replace("/", "_")


def check_configurations(configs, shared, seed, repeats):
    """Build every configuration's options before any training, so a bad value stops the sweep at once."""
    for config in configs:
        for s in range(seed, seed + repeats):
            TrainOptions(**{**shared, **config, "seed": s}).check_paths()


def run_sweep(out, grid, shared, repeats, seed=0, baseline=None):
    """Train every configuration x seed (finished runs kept), then write and return the comparison."""
    configs = configurations(grid)
    check_configurations(configs, shared, seed, repeats)
    base = match_baseline(configs, baseline)
    folders = [Path(out) / folder_name(config) for config in configs]
    kept = [finished_seeds(folder, repeats, seed) for folder in folders]
    total, started, trained = len(configs) * repeats, time.perf_counter(), 0
    to_train = total - sum(kept)
    results = []
    for index, (config, folder) in enumerate(zip(configs, folders)):
        progress(index * repeats, total, config, seconds_left(time.perf_counter() - started, trained, to_train))
        results.append((config, train_repeats(folder, repeats, {**shared, **config}, seed=seed)))
        trained += repeats - kept[index]
    return write_sweep(Path(out), results, base)


def seconds_left(elapsed, trained, to_train):
    """Time left at the pace of the runs trained in this invocation (kept runs took none); None before one."""
    return elapsed / trained * (to_train - trained) if trained else None


def progress(done, total, config, seconds):
    """Which run of how many, and the time left (seconds, or None when unknown yet), on stderr."""
    left = f"; about {seconds / 60:.0f} min left" if seconds is not None else ""
    say(f"runs {done + 1}.. of {total}: {folder_name(config)}{left}")


def match_baseline(configs, baseline):
    """The index of the configuration named by --baseline KEY=V,... (None without one)."""
    if baseline is None:
        return None
    wanted = baseline_values(baseline)
    matches = [i for i, config in enumerate(configs) if all(config.get(k) == v for k, v in wanted.items())]
    if len(matches) != 1:
        raise UsageError(f"--baseline {baseline!r} matches {len(matches)} configurations of the grid; name one")
    return matches[0]


def comparison_rows(results, base):
    """One row per configuration: mean/sd of the compared metrics, n, wall time, and the paired difference."""
    rows = []
    for config, summary in results:
        runs = summary["runs"]
        row = {"configuration": folder_name(config), **config, "n": len(runs),
               "wall_seconds": sum(r["train_seconds"] or 0 for r in runs)}
        for metric in compared_metrics(runs):
            stats = describe([r[metric] for r in runs])
            row[f"{metric}_mean"], row[f"{metric}_sd"] = stats["mean"], stats["sd"]
        if base is not None and results[base][0] != config:
            for metric in [m for m in compared_metrics(runs) if m.endswith("top1")]:
                row.update(paired_columns(metric, runs, results[base][1]["runs"]))
        rows.append(row)
    return rows


def compared_metrics(runs):
    """The test split's compared metrics, then each --also-score CSV's (<name>_top1, ...) that every run has."""
    extra = [k for k in runs[0] if k.endswith(ALSO_FIGURES) and k not in COMPARED and all(k in r for r in runs)]
    return [*COMPARED, *extra]


def paired_columns(metric, runs, base_runs):
    """<metric>_diff, _diff_low, _diff_high against the baseline on the same seeds, and the verdict (for top1:
    `verdict`, for another CSV's top-1: <metric>_verdict)."""
    base = {r["seed"]: r[metric] for r in base_runs if metric in r}
    pairs = [(r[metric], base[r["seed"]]) for r in runs if r["seed"] in base]
    diff = paired_difference([a for a, _ in pairs], [b for _, b in pairs])
    verdict = "distinguishable" if diff["distinguishable"] else "not distinguishable from seed noise"
    return {f"{metric}_diff": diff["mean"], f"{metric}_diff_low": diff["low"], f"{metric}_diff_high": diff["high"],
            "verdict" if metric == "top1" else f"{metric}_verdict": verdict}


def write_sweep(out, results, base):
    """sweep.csv, sweep.json and sweep.png in OUT, and the table on stdout."""
    import pandas as pd

    rows = comparison_rows(results, base)
    every_run = [run for _, summary in results for run in summary["runs"]]
    write_csv(out / "sweep.csv", pd.DataFrame(rows), index=False)
    write_json(out / "sweep.json", {"baseline": folder_name(results[base][0]) if base is not None else None,
                                    "configurations": rows, "runs": {folder_name(c): s["runs"] for c, s in results},
                                    "code": code_versions(every_run)})
    plot_sweep(results, out / "sweep.png")
    write_html_report(out)
    print(format_sweep(rows))
    warning = mixed_code_warning(every_run)
    if warning:
        say(warning)
    return rows


def format_sweep(rows):
    """The printed table."""
    from tabulate import tabulate

    extra = [k[:-len("_mean")] for k in rows[0] if k.endswith("_top1_mean")]
    table = [[r["configuration"], f"{r['top1_mean']:.4f} +- {r['top1_sd']:.4f}",
              f"{r['balanced_accuracy_mean']:.4f}", f"{r['macro_f1_mean']:.4f}", r["n"], f"{r['wall_seconds']:.0f}",
              versus(r, "top1")] + [cell for m in extra for cell in (f"{r[m + '_mean']:.4f} +- {r[m + '_sd']:.4f}",
                                                                       versus(r, m))] for r in rows]
    return tabulate(table, headers=["configuration", "top-1 mean +- sd", "balanced acc.", "macro F1", "n", "wall s",
                                    "top-1 vs baseline (95% interval)"]
                    + [h for m in extra for h in (f"{m} mean +- sd", f"{m} vs baseline")])


def versus(row, metric):
    """'+d [low, high] verdict' of a paired difference against the baseline, or '' for the baseline itself."""
    if f"{metric}_diff" not in row:
        return ""
    verdict = row["verdict" if metric == "top1" else f"{metric}_verdict"]
    return (f"{row[metric + '_diff']:+.4f} [{row[metric + '_diff_low']:+.4f}, {row[metric + '_diff_high']:+.4f}] "
            f"{verdict}")


def plot_sweep(results, path):
    """Each configuration's test top-1: a point per seed, the mean, and its 95% interval."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5, 1.4 * len(results)), 4))
    ax = fig.subplots()
    for x, (config, summary) in enumerate(results):
        values = [r["top1"] for r in summary["runs"]]
        stats = describe(values)
        half = half_width(values)
        ax.scatter([x] * len(values), values, color="grey", s=14)
        ax.errorbar([x], [stats["mean"]], yerr=[half], fmt="o", color="C0", capsize=6)
    ax.set_xticks(range(len(results)), [folder_name(c) for c, _ in results], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test top-1")
    ax.set_title("Sweep: test top-1 per seed, mean and 95% interval")
    ax.grid(alpha=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")

