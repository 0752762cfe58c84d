"""The make-labels command: stdout carries only the CSV, stderr the summary; exit codes and one-line errors."""
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from labeling.cli import main

REPO = Path(__file__).resolve().parents[1]


def small_tree(root):
    for folder, count in [("img/Soft_Tee", 4), ("img/Caf&eacute;_Tee", 3), ("img/Blue_Jeans", 5), ("img/Old_Jeans", 2),
                          ("img/Red_Jeans", 2)]:
        for i in range(count):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), (i * 20, 0, 0)).save(root / folder / f"img_{i:08d}.jpg")
    return root


def test_stdout_is_only_the_csv_and_stderr_ends_with_the_summary_table(tmp_path, capsys):
    root = small_tree(tmp_path / "t")
    assert main([str(root), "--split", "group", "--seed", "2"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 16 and list(rows[0]) == ["path", "label", "group", "split", "category_type"]
    assert {row["label"] for row in rows} == {"Tee", "Jeans"}
    lines = err.splitlines()
    assert lines[0].startswith(f"make-labels: scanned 16 files in 7 folders under {root}: 16 images")
    header = lines.index(next(line for line in lines if line.startswith("label ")))
    assert lines[header].split() == ["label", "type", "images", "groups", "train", "val", "test"]
    table = {line.split()[0]: line.split()[1:] for line in lines[header + 2:] if not line.startswith("make-labels")}
    counts = {label: sum(1 for row in rows if row["label"] == label) for label in ("Tee", "Jeans")}
    assert table["Jeans"][:3] == ["lower", str(counts["Jeans"]), "3"]
    assert table["Tee"][:3] == ["upper", str(counts["Tee"]), "2"]
    assert table["TOTAL"][:2] == ["16", "5"]
    assert any(line.startswith("make-labels: warning: label 'Tee' has no images in val") for line in lines)


def test_output_file_and_summary_json(tmp_path, capsys):
    root = small_tree(tmp_path / "t")
    out = tmp_path / "labels.csv"
    assert main([str(root), "-o", str(out), "--split", "none"]) == 0
    assert capsys.readouterr().out == ""
    assert out.read_text().splitlines()[0] == "path,label,group,split,category_type"
    summary = json.loads((tmp_path / "labels.summary.json").read_text())
    assert summary["rows"] == 16 and summary["split"] == "none"
    assert summary["labels"][-1] == {"label": "TOTAL", "type": "", "images": 16, "groups": 5}
    assert sorted(os.listdir(tmp_path)) == ["labels.csv", "labels.summary.json", "t"]


@pytest.mark.parametrize("argv, message", [
    (["{root}/absent"], "{root}/absent does not exist; give the folder that holds the images"),
    (["{root}", "--val-frac", "0.5", "--test-frac", "0.5"], "--val-frac 0.5 and --test-frac 0.5 must each be"),
    (["{root}", "--source", "official"], "--source official needs Anno/list_category_img.txt"),
    (["{root}", "--split", "folders"], "--split folders needs every image in a class folder"),
    (["{root}", "-o", "{root}/nowhere/labels.csv"], "cannot write {root}/nowhere/labels.csv: folder"),
])
def test_user_mistakes_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    root = small_tree(tmp_path / "t")
    out = tmp_path / "labels.csv"
    argv = [arg.format(root=root) for arg in argv]
    if "-o" not in argv:
        argv += ["-o", str(out)]
    before = sorted(os.listdir(tmp_path))
    assert main(argv) == 2
    out_text, err = capsys.readouterr()
    assert out_text == ""
    assert err.startswith("make-labels: error: " + message.format(root=root))
    assert err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == before


def test_malformed_annotation_line_is_reported_with_file_and_line(tmp_path, capsys):
    root = small_tree(tmp_path / "t")
    (root / "Anno").mkdir()
    (root / "Anno" / "list_category_cloth.txt").write_text("2\ncategory_name  category_type\nTee  1\nJeans\n")
    assert main([str(root)]) == 2
    assert capsys.readouterr().err == (f"make-labels: error: {root}/Anno/list_category_cloth.txt:4: expected "
                                       "'CATEGORY_NAME  CATEGORY_TYPE', got 'Jeans'\n")


def test_bad_choice_is_an_argparse_error_with_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--split", "random"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'random'" in capsys.readouterr().err


def test_check_on_the_sample_tree(sample_tree, tmp_path, capsys):
    out = tmp_path / "labels.csv"
    assert main([str(sample_tree), "--source", "check", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    n = len(rows)
    assert n == sum(1 for _ in (sample_tree / "img").rglob("*.jpg"))
    assert all(row["label"] == row["official_label"] for row in rows)
    assert f"make-labels: check: {n:,} of {n:,} annotated images agree with their folder label; 0 disagree" in err
    assert "split: official (Eval/list_eval_partition.txt)" in err
    assert {row["split"] for row in rows} == {"train", "val", "test"}


def run_module(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "labeling", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_python_m_labeling_subprocess(tmp_path):
    small_tree(tmp_path / "t")
    done = run_module(["t", "--split", "group"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("t/img/")
    assert "TOTAL" in done.stderr
    failed = run_module(["t", "--test-frac", "1.5", "-o", "labels.csv"], cwd=tmp_path)
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr == ("make-labels: error: --val-frac 0.1 and --test-frac 1.5 must each be in [0, 1) and sum "
                             "to less than 1, to leave images for training\n")
    assert not (tmp_path / "labels.csv").exists()


@pytest.mark.slow
def test_real_class_per_folder_dataset(clothing_small, tmp_path, capsys):
    out = tmp_path / "labels.csv"
    assert main([str(clothing_small), "-o", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    on_disk = [p for p in clothing_small.rglob("*") if p.suffix.lower() == ".jpg"]
    assert len(rows) == len(on_disk)
    assert {row["split"] for row in rows} == {"train", "val", "test"}
    for row in rows[::97]:
        split_folder, label = Path(row["group"]).parts
        assert row["label"] == label == Path(row["path"]).parent.name
        assert row["split"] == {"validation": "val"}.get(split_folder, split_folder)
    assert "split: folders" in capsys.readouterr().err
