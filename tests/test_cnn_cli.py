"""The cnn command lines: one-line exit-2 errors for user mistakes, dispatch, and fast --help."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cnn.cli import evaluate_main, main, predict_main, train_main
from conftest import tiny_argv

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def images(tmp_path):
    """Six real (tiny) JPEG files in tmp_path/img, named a0..a5."""
    from PIL import Image

    folder = tmp_path / "img"
    folder.mkdir()
    paths = []
    for i in range(6):
        path = folder / f"a{i}.jpg"
        Image.new("RGB", (16, 16), (40 * i, 20, 200)).save(path)
        paths.append(str(path))
    return paths


def write_csv(path, rows, columns=("path", "label", "split")):
    """A labels CSV from tuples."""
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return str(path)


def one_line_error(capsys, prog):
    """The single stderr line a user error prints (asserting there is exactly one, from `prog`)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), lines
    return lines[0]


def test_missing_labels_csv(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train_main([]) == 2
    assert "labels CSV labels.csv not found" in one_line_error(capsys, "train-cnn")


def test_csv_without_split_column(tmp_path, images, capsys):
    csv = write_csv(tmp_path / "l.csv", [(p, "x") for p in images], columns=("path", "label"))
    assert train_main(["--labels", csv]) == 2
    assert "lacks column(s) split" in one_line_error(capsys, "train-cnn")


def test_csv_without_val_rows(tmp_path, images, capsys):
    csv = write_csv(tmp_path / "l.csv", [(p, "xy"[i % 2], "train") for i, p in enumerate(images)])
    assert train_main(["--labels", csv]) == 2
    assert "has no 'val' rows" in one_line_error(capsys, "train-cnn")


def test_class_only_in_test(tmp_path, images, capsys):
    rows = [(images[0], "x", "train"), (images[1], "y", "train"), (images[2], "x", "val"),
            (images[3], "Skirt", "test")]
    assert train_main(["--labels", write_csv(tmp_path / "l.csv", rows)]) == 2
    assert "Skirt appear in 'test' but not in 'train'" in one_line_error(capsys, "train-cnn")


def test_missing_image_file(tmp_path, images, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = [(images[0], "x", "train"), (images[1], "y", "train"), ("img/gone.jpg", "x", "train"),
            (images[2], "x", "val")]
    assert train_main(["--labels", write_csv(tmp_path / "l.csv", rows), *tiny_argv()]) == 2
    message = one_line_error(capsys, "train-cnn")
    assert "1 of 4 image files are missing (img/gone.jpg)" in message and "--skip-missing" in message
    assert not (tmp_path / "runs").exists()


def test_bad_augment_spec(tmp_path, images, capsys):
    rows = [(images[0], "x", "train"), (images[1], "y", "train"), (images[2], "x", "val"), (images[3], "y", "val")]
    assert train_main(["--labels", write_csv(tmp_path / "l.csv", rows), "--augment", "spin=2",
                       "--out", str(tmp_path / "run")]) == 2
    assert "--augment 'spin=2': unknown augmentation spin" in one_line_error(capsys, "train-cnn")


@pytest.mark.parametrize("argv, message", [
    (["--arch", "resnet"], "invalid choice: 'resnet'"),
    (["--precision", "fp8"], "invalid choice: 'fp8'"),
    (["--epochs", "x"], "invalid int value: 'x'"),
])
def test_unparsable_option_values_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs 0: must be 1 or more"),
    (["--dropout", "1.5"], "--dropout 1.5: must be in [0, 1)"),
    (["--lr", "nan"], "--lr nan: must be a finite number > 0"),
    (["--image-size", "21"], "--image-size 21: must be between 94 (the smallest input --arch cnn5 can take) and "
                             "1024; for smaller images use --arch cnn"),
    (["--arch", "cnn", "--image-size", "21"], "--image-size 21: must be between 22 (the smallest input --arch cnn"),
    (["--image-size", "45", "--arch", "cnn-deep"], "must be between 46"),
    (["--image-size", "100000"], "and 1024"),
    (["--seed", "-1"], "--seed -1: must be in 0..4294967295"),
    (["--seed", str(2**32)], "must be in 0..4294967295"),
    (["--cache", "/no/such/folder/cache"], "--cache /no/such/folder/cache: folder /no/such/folder does not exist"),
])
def test_bad_option_values_one_line_exit_2_before_any_work(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no labels.csv here: the options are refused before the CSV is read
    assert train_main(argv) == 2
    assert message in one_line_error(capsys, "train-cnn")
    assert list(tmp_path.iterdir()) == []


def test_resume_without_interrupted_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train_main(["--resume"]) == 2
    assert "no interrupted run under runs/" in one_line_error(capsys, "train-cnn")


def test_evaluate_and_predict_need_a_run_folder(tmp_path, images, capsys):
    assert evaluate_main([str(tmp_path)]) == 2
    assert "config.json not found: is " in one_line_error(capsys, "evaluate-cnn")
    assert predict_main([str(tmp_path), images[0]]) == 2
    assert "config.json not found: is " in one_line_error(capsys, "predict-cnn")


def test_python_m_cnn_dispatches_and_help_does_not_import_tensorflow():
    code = ("import sys; from cnn.cli import main\n"
            "try:\n    main(['predict', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "IMAGE_OR_DIR" in done.stdout and "--format {table,csv,json}" in done.stdout
    done = subprocess.run([sys.executable, "-m", "cnn", "fly"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "usage: python -m cnn {train,sweep,evaluate,predict" in done.stderr


def test_main_routes_to_train(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--labels", "nope.csv"]) == 2
    assert "labels CSV nope.csv not found" in one_line_error(capsys, "train-cnn")


def test_unknown_split_values(tmp_path, images, capsys):
    rows = [(images[0], "x", "train"), (images[1], "x", "validation")]
    assert train_main(["--labels", write_csv(tmp_path / "l.csv", rows)]) == 2
    assert "split values must be train, val, test; found 'validation'" in one_line_error(capsys, "train-cnn")


def test_show_batch_is_dispatched_and_rejects_errors_with_per_class(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["show-batch", "--errors", "runs/x", "--per-class", "2"])
    assert exit_info.value.code == 2
    assert "cannot be combined with --per-class" in capsys.readouterr().err
