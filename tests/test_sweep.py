"""sweep-cnn: grid parsing and its errors, and a tiny real sweep that is killed, resumed and compared."""
import json
import signal

import pandas as pd
import pytest

from conftest import start_cnn, tiny_argv, wait_for
from cnn.cli import sweep_main
from cnn.experiments.repeats import finished_seeds
from cnn.experiments import sweep
from cnn.experiments.sweep import configurations, match_baseline, parse_grid, seconds_left
from common.errors import UsageError



def test_grid_values_are_typed_and_combined():
    grid = parse_grid(["dropout=0,0.5", "--arch=cnn,cnn-deep", "batch-norm=true,false"])
    assert grid == {"dropout": [0.0, 0.5], "arch": ["cnn", "cnn-deep"], "batch_norm": [True, False]}
    assert len(configurations(grid)) == 8
    assert configurations({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]


def test_this_rounds_levers_are_grid_options():
    from cnn.training.options import TrainOptions

    grid = parse_grid(["ema=0,0.999", "progressive=none;128,192:0.6", "distill-weight=0.5,1"])
    assert grid == {"ema": [0.0, 0.999], "progressive": ["none", "128,192:0.6"], "distill_weight": [0.5, 1.0]}
    for config in configurations(grid):  # each a valid run's options (the teacher folder is checked at run start)
        TrainOptions(teacher="runs/teacher", **config)


def test_values_with_commas_are_separated_by_semicolons():
    grid = parse_grid(["augment=none;flip;flip,crop=0.2", "dropout=0,0.5"])
    assert grid == {"augment": ["none", "flip", "flip,crop=0.2"], "dropout": [0.0, 0.5]}
    configs = configurations(grid)
    assert match_baseline(configs, "augment=flip,crop=0.2,dropout=0.5") == 5
    assert match_baseline(configs, "dropout=0,augment=flip") == 2
    with pytest.raises(UsageError, match="matches 2 configurations"):
        match_baseline(configs, "augment=flip,crop=0.2")
    with pytest.raises(UsageError, match="--baseline 'colour=red'"):
        match_baseline(configs, "colour=red,dropout=0")


@pytest.mark.parametrize("item, message", [
    ("colour=red,blue", "with KEY a train-cnn option"),
    ("dropout=0,,0.5", "an empty value"),
    ("augment=none;;flip", "an empty value"),
    ("dropout", "give KEY=V1,V2"),
    ("epochs=ten", "'ten' is not a valid int"),
    ("seed=1,2", "seeds come from --repeats"),
])
def test_bad_grids_are_user_errors(item, message):
    with pytest.raises(UsageError, match=message):
        parse_grid([item])


def test_bad_grid_on_the_command_line_is_one_line_exit_2(tmp_path, capsys):
    assert sweep_main(["--grid", "colour=red", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sweep-cnn: error: --grid 'colour=red'") and "\n" not in err
    assert sweep_main(["--grid", "dropout=0,1.5", "--out", str(tmp_path / "s"), "--", *tiny_argv()]) == 2
    assert "--dropout 1.5: must be in [0, 1)" in capsys.readouterr().err  # checked before any training
    assert not (tmp_path / "s").exists()


@pytest.mark.train
def test_a_tiny_sweep_killed_then_resumed_then_compared(sample_labels, tmp_path, monkeypatch, capsys):
    sample_labels.to_csv(tmp_path / "labels.csv", index=False)
    argv = ["--grid", "dropout=0,0.5", "--repeats", "2", "--baseline", "dropout=0", "--out", "sweep", "--",
            *tiny_argv(recipe="card")]
    process = start_cnn(["sweep", *argv], tmp_path)
    first = tmp_path / "sweep" / "dropout=0.0" / "seed-0" / "finished.json"  # written last
    assert wait_for(first.exists, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = first.stat().st_mtime_ns
    monkeypatch.chdir(tmp_path)
    assert sweep_main(argv) == 0
    assert first.stat().st_mtime_ns == kept  # the finished run was kept, not trained again
    rows = pd.read_csv(tmp_path / "sweep" / "sweep.csv")
    assert rows["configuration"].tolist() == ["dropout=0.0", "dropout=0.5"] and (rows["n"] == 2).all()
    runs = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["runs"]
    mean = sum(r["top1"] for r in runs["dropout=0.5"]) / 2
    assert rows.loc[1, "top1_mean"] == pytest.approx(mean)
    diffs = [a["top1"] - b["top1"] for a, b in zip(runs["dropout=0.5"], runs["dropout=0.0"])]
    assert rows.loc[1, "top1_diff"] == pytest.approx(sum(diffs) / 2) and pd.isna(rows.loc[0, "top1_diff"])
    assert rows.loc[1, "verdict"] in ("distinguishable", "not distinguishable from seed noise")
    printed = capsys.readouterr()
    assert "dropout=0.5" in printed.out and (tmp_path / "sweep" / "sweep.png").stat().st_size > 0
    page = (tmp_path / "sweep" / "report.html").read_text()
    assert 'href="dropout=0.5/report.html"' in page and (tmp_path / "sweep" / "dropout=0.5" / "report.html").is_file()
    assert len(json.loads((tmp_path / "sweep" / "sweep.json").read_text())["code"]) == 1  # one code version
    assert "versions of the code" not in printed.err
    # Another shared option into the same folder would mix results: refused.
    assert sweep_main([*argv[:argv.index("--") + 1], *tiny_argv(epochs=2, recipe="card")]) == 2
    assert "holds a finished run with other settings: --epochs 2 (recorded: 1)" in capsys.readouterr().err


def test_a_resumed_sweep_estimates_from_the_runs_it_trains(tmp_path, monkeypatch, capsys):
    """Config 1 finished earlier (kept, no time); config 2's two runs take 100 s each on a fake clock, so
    before config 3 two runs are left at 100 s: about 3 min (counting the kept runs would say 2)."""
    clock = [0.0]
    monkeypatch.setattr(sweep.time, "perf_counter", lambda: clock[0])

    def fake_train_repeats(out, repeats, options, seed=0):
        clock[0] += 100 * (repeats - finished_seeds(out, repeats, seed))
        return {}

    monkeypatch.setattr(sweep, "train_repeats", fake_train_repeats)
    monkeypatch.setattr(sweep, "write_sweep", lambda out, results, base: results)
    for s in (0, 1):
        (tmp_path / "dropout=0.0" / f"seed-{s}").mkdir(parents=True)
        (tmp_path / "dropout=0.0" / f"seed-{s}" / "finished.json").write_text("{}")
    sweep.run_sweep(tmp_path, parse_grid(["dropout=0,0.25,0.5"]), {"epochs": 1}, repeats=2)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["sweep-cnn: runs 1.. of 6: dropout=0.0", "sweep-cnn: runs 3.. of 6: dropout=0.25",
                     "sweep-cnn: runs 5.. of 6: dropout=0.5; about 3 min left"]


def test_time_left_counts_only_the_runs_trained_in_this_invocation():
    assert seconds_left(elapsed=600, trained=2, to_train=5) == pytest.approx(900)  # 300 s a run, 3 to go
    assert seconds_left(elapsed=4, trained=0, to_train=3) is None  # only kept runs so far: no pace yet
    assert seconds_left(elapsed=100, trained=4, to_train=4) == 0


def test_finished_seeds_counts_runs_with_the_finished_marker(tmp_path):
    for s in (3, 4):
        (tmp_path / f"seed-{s}").mkdir()
    (tmp_path / "seed-3" / "finished.json").write_text("{}")
    (tmp_path / "seed-4" / "metrics.json").write_text("{}")  # a report without the marker: killed before the end
    assert finished_seeds(tmp_path, repeats=3, seed=3) == 1  # seed 4 interrupted, seed 5 not started
    assert finished_seeds(tmp_path, repeats=2, seed=0) == 0


def test_the_sweeps_own_options_are_refused_after_the_separator(capsys):
    with pytest.raises(SystemExit):
        sweep_main(["--grid", "dropout=0,0.5", "--out", "s", "--", "--seed", "3"])
    assert "--out, --resume, --repeats, --seed are the sweep-cnn command's own" in capsys.readouterr().err
