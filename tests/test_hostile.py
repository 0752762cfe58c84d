"""Hostile input, replayed: each case ends in one line on stderr and exit 2 (never a traceback), the dataset's
files unchanged, and no half-written output under its final name (docs/guarantees.md)."""
import hashlib
import os
import subprocess
import sys
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from cnn.cli import evaluate_main, export_main, pack_shards_main, predict_main, train_main
from cnn.training.distribute.strategy import cluster_role
from common.errors import UsageError
from conftest import REPO, tiny_argv


def tree_digest(root):
    """SHA-256 over every file's path and bytes under `root`: the dataset is never changed."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module", autouse=True)
def dataset_untouched(sample_tree):
    before = tree_digest(sample_tree)
    yield
    assert tree_digest(sample_tree) == before


def plus(table, rows):
    """`table` with `rows` (a DataFrame or a list of dicts) appended."""
    return pd.concat([table, pd.DataFrame(rows)], ignore_index=True)


def refused(capsys, command, argv, message):
    """command(argv) exits 2 with exactly one line on stderr that holds `message`, and no traceback."""
    capsys.readouterr()
    assert command(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in lines[0], lines


@pytest.fixture
def csv_dir(tmp_path, sample_labels, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path, sample_labels


@pytest.mark.parametrize("edit, message", [
    (lambda t: plus(t, t[t.split == "test"].head(1).assign(split="train")),
     "name an image already listed"),  # a test image added as a train row
    (lambda t: plus(t, t[t.split == "test"].head(1).assign(split="train", label="Tee")),
     "name an image already listed"),  # ... as another class
    (lambda t: plus(t, t[t.split == "train"].head(1)), "name an image already listed"),
    (lambda t: t.assign(path=t.path.where(t.index != 3, t.path.iloc[1].replace("/img/", "/img/./"))),
     "name an image already listed"),  # the same file spelt another way
])
def test_a_csv_that_repeats_an_image_is_refused_by_every_reader(csv_dir, capsys, edit, message):
    folder, table = csv_dir
    edit(table.copy()).to_csv(folder / "bad.csv", index=False)
    refused(capsys, train_main, ["--labels", "bad.csv", *tiny_argv()], message)
    refused(capsys, pack_shards_main, ["bad.csv", "shards"], message)
    assert not (folder / "runs").exists() and not (folder / "shards").exists()


def test_padded_labels_train_as_their_class(csv_dir):
    folder, table = csv_dir
    from cnn.data.labels_csv import read_labels

    table.assign(label=table.label.where(table.index % 2 == 0, " " + table.label + " ")).to_csv(
        folder / "padded.csv", index=False)
    assert sorted(set(read_labels(folder / "padded.csv").label)) == sorted(set(table.label))


@pytest.mark.train
def test_a_run_whose_config_names_another_image_size_is_refused_everywhere(small_run, tmp_path, capsys):
    run, table = small_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["options"]["image_size"] = 48
    (copy / "config.json").write_text(json.dumps(config))
    image = table.path.iloc[0]
    for command, argv in ((evaluate_main, [str(copy)]), (predict_main, [str(copy), image]),
                          (export_main, [str(copy), "--format", "tflite", "-o", str(tmp_path / "export")])):
        refused(capsys, command, argv, "records --image-size 48 but model.keras takes 32x32")
    assert not (tmp_path / "export").exists()


@pytest.mark.train
def test_an_export_is_proved_written_readable_and_refused_under_a_file(small_run, tmp_path, capsys):
    run, _ = small_run
    out = tmp_path / "exports" / "tflite"
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / ".tflite.stale").mkdir()  # what a killed export leaves
    assert export_main([str(run), "--format", "tflite", "-o", str(out)]) == 0
    assert out.stat().st_mode & 0o055  # readable by another account (a server), not mkdtemp's 0700
    assert not (tmp_path / "exports" / ".tflite.stale").exists()
    (tmp_path / "a-file").write_text("x")
    refused(capsys, export_main, [str(run), "--format", "tflite", "-o", str(tmp_path / "a-file" / "x")],
            "cannot write the export in")


@pytest.mark.train
def test_a_truncated_shard_is_refused_before_training(csv_dir, capsys):
    folder, table = csv_dir
    table.to_csv(folder / "labels.csv", index=False)
    assert pack_shards_main(["labels.csv", "shards", "--image-size", "32", "--raw"]) == 0
    shard = sorted((folder / "shards").glob("train-*.tfrecord"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    refused(capsys, train_main, ["--data", "shards", *tiny_argv(), "--out", "runs/cut"], "cut short or changed")
    assert not (folder / "runs" / "cut").exists()


@pytest.mark.parametrize("config, message", [
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}, "past the cluster's 2 worker"),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "chief", "index": 0}}, "not in the cluster"),
    ({"cluster": {"worker": ["a:1"], "ps": ["c:3"]}, "task": {"type": "worker", "index": 0}}, "ps tasks"),
    ({"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}, "lists of 'host:port'"),
    ({"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}, "lists of 'host:port'"),
    ({"cluster": {"chief": ["a:1", "b:2"], "worker": []}, "task": {"type": "chief", "index": 0}}, "2 chiefs"),
    ({"cluster": [], "task": {}}, "not valid JSON with cluster.worker"),
])
def test_an_inconsistent_tf_config_is_one_line(config, message):
    with pytest.raises(UsageError, match=message):
        cluster_role({"TF_CONFIG": json.dumps(config)})


def test_a_worker_share_smaller_than_a_batch_is_refused():
    from types import SimpleNamespace

    from cnn.data.datasets import check_worker_share

    with pytest.raises(UsageError, match="27 images over 2 workers give each 13, fewer than one replica's batch of 16"):
        check_worker_share(27, SimpleNamespace(workers=2, replicas=2), 32)
    check_worker_share(27, SimpleNamespace(workers=2, replicas=2), 26)  # 13 each: whole batches of 13


@pytest.mark.train
def test_an_image_over_the_pixel_limit_is_skipped_by_the_trainer_and_dropped_by_verify(csv_dir, capsys):
    folder, table = csv_dir
    from labeling.verify import decode_error

    Image.new("1", (20000, 20000)).save(folder / "huge.png")  # 400M pixels, 48 KB on disk, 1.2 GB decoded
    assert "too large to decode: more than 178,956,970 pixels" in decode_error(folder / "huge.png")
    plus(table, [{"path": "huge.png", "label": table.label.iloc[0], "group": "huge", "split": "train"}]).to_csv(
        folder / "labels.csv", index=False)
    assert train_main([*tiny_argv(), "--out", "runs/huge"]) == 0
    assert "skipped image huge.png (too large to decode: more than 178,956,970 pixels)" in capsys.readouterr().err


def test_a_full_disk_on_stdout_is_one_line(sample_tree, capfd):
    from labeling.cli import main as make_labels_main

    with open("/dev/full", "w") as full, pytest.MonkeyPatch.context() as m:
        m.setattr("sys.stdout", full)
        assert make_labels_main([str(sample_tree)]) == 2
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert err[-1] == "make-labels: error: No space left on device; free some space or write the output elsewhere"


def test_init_without_arch_takes_the_runs_architecture(csv_dir):
    from cnn.training.runstate import fresh_run

    folder, table = csv_dir
    table.to_csv(folder / "labels.csv", index=False)
    (folder / "source").mkdir()
    (folder / "source" / "config.json").write_text(json.dumps({"options": {"arch": "cnn5", "image_size": 64}}))
    (folder / "source" / "model.keras").write_bytes(b"")  # the options only check that it is there
    options, _ = fresh_run({"init": "source"})
    assert options.arch == "cnn5"
    assert fresh_run({"init": "source", "arch": "cnn"})[0].arch == "cnn"  # typed: kept (then refused by prepare)


def test_pack_shards_refuses_an_output_inside_the_image_tree(csv_dir, sample_tree, capsys):
    folder, table = csv_dir
    table.to_csv(folder / "labels.csv", index=False)
    refused(capsys, pack_shards_main, ["labels.csv", str(sample_tree / "img" / "shards")], "which pack-shards only reads")
    assert not (sample_tree / "img" / "shards").exists()


@pytest.mark.parametrize("backend, message", [("bogus", "KERAS_BACKEND='bogus' is not a backend"),
                                              ("torch", None)])
def test_a_backend_keras_cannot_load_is_one_line(backend, message, tmp_path):
    """KERAS_BACKEND=bogus (or torch where it is not installed) is refused in one line by train-cnn and
    evaluate-cnn, not Keras's traceback. torch is hidden from the process (None in sys.modules: Python's own way to
    say a module cannot be imported), as make test installs it for fastai."""
    message = message or "KERAS_BACKEND=torch needs the torch package"
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO)}
    (tmp_path / "labels.csv").write_text("path,label,split\n")
    hidden = "import sys\nsys.modules['torch'] = None\nfrom cnn.__main__ import main\nsys.exit(main())"
    for command in (["train"], ["evaluate", "run"]):
        done = subprocess.run([sys.executable, "-c", hidden, *command], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr


@pytest.mark.parametrize("out", ["labels.csv", "labels.csv/run", "/proc/clothing-cnn-run"])
def test_an_out_that_cannot_be_written_is_one_line(sample_labels, tmp_path, monkeypatch, capsys, out):
    """--out a file, under a file, or where nothing can be created (/proc, even as root): one line, exit 2."""
    monkeypatch.chdir(tmp_path)
    sample_labels.to_csv("labels.csv", index=False)
    assert train_main(["--out", out, *tiny_argv()]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train-cnn: error: --out"), err
