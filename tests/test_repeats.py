"""Repeats over seeds: the statistics by hand on fixed numbers, and a real two-seed run with its summary."""
import json
import math

import pandas as pd
import pytest

from cnn.cli import train_main
from cnn.experiments.stats import describe, paired_difference
from conftest import tiny_argv


def test_describe_by_hand():
    d = describe([0.5, 0.6, 0.7])
    assert d["mean"] == pytest.approx(0.6) and d["sd"] == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / 2)
    assert (d["min"], d["max"], d["n"]) == (0.5, 0.7, 3)
    assert describe([0.4])["sd"] == 0.0


def test_paired_difference_by_hand():
    result = paired_difference([0.62, 0.60, 0.65], [0.60, 0.59, 0.61])  # differences 0.02, 0.01, 0.04
    sd = math.sqrt(((0.02 - 0.07 / 3) ** 2 + (0.01 - 0.07 / 3) ** 2 + (0.04 - 0.07 / 3) ** 2) / 2)
    half = 4.302653 * sd / math.sqrt(3)  # t(0.975, 2 degrees of freedom), from a printed table to 6 digits
    assert result["mean"] == pytest.approx(0.07 / 3)
    assert (result["low"], result["high"]) == (pytest.approx(0.07 / 3 - half), pytest.approx(0.07 / 3 + half))
    assert not result["distinguishable"]  # the interval (-0.015, 0.061) holds 0
    clear = paired_difference([0.70, 0.71, 0.72, 0.70], [0.60, 0.60, 0.61, 0.60])
    assert clear["distinguishable"] and clear["low"] > 0


@pytest.mark.train
def test_repeats_train_each_seed_and_summarise(sample_labels, tmp_path, monkeypatch, capsys):
    sample_labels.to_csv(tmp_path / "labels.csv", index=False)
    outside = sample_labels[sample_labels.split == "test"].assign(split="")  # stands for photos from elsewhere
    outside.to_csv(tmp_path / "outside.csv", index=False)
    monkeypatch.chdir(tmp_path)
    argv = ["--repeats", "2", "--seed", "5", *tiny_argv(), "--out", "rep", "--also-score", "outside.csv"]
    assert train_main(argv) == 0
    runs = {s: json.loads((tmp_path / "rep" / f"seed-{s}" / "metrics.json").read_text()) for s in (5, 6)}
    for s in (5, 6):  # the same rows as the test split, every one of them scored, with a report of its own
        assert runs[s]["also_scored"]["outside"]["top1"] == pytest.approx(runs[s]["top1"])
        assert runs[s]["also_scored"]["outside"]["images"] == len(outside)
        assert (tmp_path / "rep" / f"seed-{s}" / "eval-outside-all" / "metrics.json").is_file()
    assert [json.loads((tmp_path / "rep" / f"seed-{s}" / "config.json").read_text())["options"]["seed"]
            for s in (5, 6)] == [5, 6]
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    for metric in ("top1", "top3", "top5", "balanced_accuracy", "macro_f1"):
        values = [runs[5][metric], runs[6][metric]]
        assert summary["metrics"][metric]["mean"] == pytest.approx(sum(values) / 2)
        assert summary["metrics"][metric]["sd"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))
    rows = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert rows["seed"].tolist() == [5, 6] and (rows["epochs_run"] == 1).all()
    assert rows["outside_top1"].tolist() == pytest.approx([runs[5]["top1"], runs[6]["top1"]])
    assert "top1" in capsys.readouterr().err
    before = (tmp_path / "rep" / "seed-5" / "model.keras").stat().st_mtime_ns
    assert train_main(argv) == 0  # a rerun keeps the finished seeds
    assert (tmp_path / "rep" / "seed-5" / "model.keras").stat().st_mtime_ns == before
    assert "already finished, kept" in capsys.readouterr().err


@pytest.mark.train
def test_runs_of_other_code_are_kept_but_flagged(sample_labels, tmp_path, monkeypatch, capsys):
    from cnn.runfolder import code_version

    sample_labels.to_csv(tmp_path / "labels.csv", index=False)
    monkeypatch.chdir(tmp_path)
    argv = ["--repeats", "2", *tiny_argv(), "--out", "rep"]
    assert train_main(argv) == 0
    config = json.loads((tmp_path / "rep" / "seed-0" / "config.json").read_text())
    assert config["code"] == code_version() and config["code"].startswith("clothing-cnn ")
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert len(summary["code"]) == 1 and "versions of the code" not in capsys.readouterr().err
    older = {**config, "code": "clothing-cnn 0.0.9, git 0123456789ab"}  # as an older checkout would have written
    (tmp_path / "rep" / "seed-0" / "config.json").write_text(json.dumps(older))
    assert train_main(argv) == 0
    err = capsys.readouterr().err
    assert "warning: these 2 runs come from 2 versions of the code" in err and "git 0123456789ab" in err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert len(summary["code"]) == 2
    assert pd.read_csv(tmp_path / "rep" / "summary.csv")["code"].str.contains("0123456789ab").tolist() == [True, False]


def test_also_scored_csvs_join_the_summary_beside_the_test_split():
    from cnn.experiments.repeats import summarise

    runs = [(s, {"top1": 0.7 + s / 100, "top3": 0.9, "top5": 1.0, "balanced_accuracy": 0.6, "macro_f1": 0.6,
                 "also_scored": {"outside": {"top1": 0.65 + s / 50, "balanced_accuracy": 0.5, "macro_f1": 0.5,
                                             "images": 368, "labels": "outside.csv"}}}) for s in (0, 1, 2)]
    summary = summarise(runs)
    assert [r["outside_top1"] for r in summary["runs"]] == pytest.approx([0.65, 0.67, 0.69])
    assert summary["metrics"]["outside_top1"]["mean"] == pytest.approx(0.67)
    assert "outside_images" not in summary["metrics"]
