"""What survives kills, reruns and hostile input: each test names the cause it covers (README, "What can go wrong")."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from PIL import Image

from cnn.cli import evaluate_main, predict_main, train_main
from cnn.data.datasets import cache_for
from cnn.training.train import train
from common.command import run_command
from labeling.cli import main as make_labels_main
from conftest import REPO, TINY, start_cnn, tiny_argv, wait_for
from interrupt import StopAfterEpoch

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def workdir(labelled_folder, sample_labels):
    """A folder with labels.csv for the sample tree and a copy relabelled (two classes merged)."""
    folder = labelled_folder("reliability")
    sample_labels.assign(label=sample_labels.label.replace({"Shorts": "Jeans"})).to_csv(folder / "merged.csv",
                                                                                          index=False)
    return folder


def stderr_lines(text):
    return [line for line in text.strip().splitlines() if line]


# A kill -9 in the middle of writing model.keras: Keras writes the .keras zip in place, so before the
# fix the folder kept a truncated model that refused reruns and crashed evaluate-cnn.
KILL_DURING_FIRST_MODEL_SAVE = """
import os, signal, zipfile
_close = zipfile.ZipFile.close
def close(self):
    if self.mode == "w" and str(self.filename).endswith(".keras"):
        os.kill(os.getpid(), signal.SIGKILL)
    _close(self)
zipfile.ZipFile.close = close
"""


@pytest.mark.train
def test_kill_during_model_save_leaves_no_truncated_model_and_rerun_finishes(workdir):
    argv = ["train", *tiny_argv(epochs=2), "--out", "runs/killed-save"]
    process = start_cnn(argv, workdir, KILL_DURING_FIRST_MODEL_SAVE)
    process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL
    run = workdir / "runs" / "killed-save"
    assert not (run / "model.keras").exists()  # the half-written zip is a temporary file, never the model
    with pytest.MonkeyPatch.context() as mp:  # the rerun in this process: it is not about a process
        mp.chdir(workdir)
        assert train_main(argv[1:]) == 0
    assert not [p for p in run.iterdir() if p.name.startswith(".model.keras")]  # the leftover was cleaned
    assert evaluate_main([str(run)]) == 0


def test_cache_key_follows_the_content(workdir):
    table = pd.read_csv(workdir / "labels.csv")
    merged = pd.read_csv(workdir / "merged.csv")
    train_rows, merged_rows = table[table.split == "train"], merged[merged.split == "train"]
    classes = sorted(set(table.label))
    key = cache_for("c", "train", train_rows, classes, 32)
    assert key == cache_for("c", "train", train_rows.copy(), classes, 32)
    assert key != cache_for("c", "train", merged_rows, sorted(set(merged.label)), 32)  # other labels
    assert key != cache_for("c", "train", train_rows, classes, 64)  # other size
    assert key != cache_for("c", "train", train_rows.iloc[1:], classes, 32)  # other rows


@pytest.mark.train
def test_file_cache_of_another_csv_is_not_reused_and_a_killed_cache_does_not_block(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    cache = workdir / "cache" / "pixels"
    cache.parent.mkdir()
    process = start_cnn(["train", *tiny_argv(epochs=3), "--cache", str(cache), "--out", "runs/cache-a"], workdir)
    assert wait_for(lambda: list(cache.parent.glob("*.lockfile")), process)
    process.send_signal(signal.SIGKILL)  # mid first epoch: TensorFlow's lockfile stays behind
    process.wait()
    assert list(cache.parent.glob("*.lockfile"))
    assert train_main([*tiny_argv(), "--cache", str(cache), "--out", "runs/cache-b"]) == 0
    first = set(cache.parent.iterdir())
    assert train_main([*tiny_argv(), "--cache", str(cache), "--labels", "merged.csv",
                       "--out", "runs/cache-c"]) == 0
    added = set(cache.parent.iterdir()) - first
    assert any(".train-32px-" in p.name for p in added) and any(".val-32px-" in p.name for p in added)
    metrics = json.loads((workdir / "runs" / "cache-c" / "metrics.json").read_text())
    assert [c["class"] for c in metrics["per_class"]] == sorted(set(pd.read_csv(workdir / "merged.csv").label))


@pytest.fixture
def interrupted(workdir, monkeypatch):
    """A run stopped after its first epoch (its backup/ kept), trained at 32 px with lr 1e-3."""
    monkeypatch.chdir(workdir)
    out = f"runs/interrupted-{time.monotonic_ns()}"
    with pytest.raises(KeyboardInterrupt):
        train(out=out, callbacks=[StopAfterEpoch(0)], **dict(TINY, epochs=3))
    return out


@pytest.mark.train
@pytest.mark.parametrize("change, message", [
    (["--image-size", "48"], "--image-size 48 (recorded: 32)"),
    (["--lr", "0.01"], "--lr 0.01 (recorded: 0.001)"),
    (["--labels", "merged.csv"], "--labels merged.csv (recorded: labels.csv)"),
])
def test_rerun_of_an_interrupted_run_with_other_options_is_refused(interrupted, change, message, capsys):
    capsys.readouterr()
    assert train_main(["--out", interrupted, *change]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("train-cnn: error: ") and message in err and "\n" not in err


@pytest.mark.train
def test_resume_refuses_a_changed_labels_csv(interrupted, workdir, capsys):
    original = (workdir / "labels.csv").read_bytes()
    try:
        (workdir / "labels.csv").write_bytes(original + b"\n")
        capsys.readouterr()
        assert train_main(["--resume", "--out", interrupted]) == 2
        assert "missing or changed since (sha256 differs)" in capsys.readouterr().err
    finally:
        (workdir / "labels.csv").write_bytes(original)
    assert train_main(["--resume", "--out", interrupted, "--epochs", "2"]) == 0  # same data: it continues


@pytest.mark.train
def test_a_second_trainer_into_the_same_folder_is_refused(workdir, capsys):
    first = start_cnn(["train", *tiny_argv(epochs=200, patience=200), "--out", "runs/locked"], workdir)
    lock = workdir / "runs" / "locked" / ".lock"
    try:
        assert wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), first)
        second = start_cnn(["train", *tiny_argv(), "--out", "runs/locked"], workdir)
        _, err = second.communicate(timeout=300)
        assert second.returncode == 2
        assert stderr_lines(err) == [f"train-cnn: error: runs/locked is in use by another train-cnn "
                                     f"(pid {first.pid}); wait for it or choose another --out"]
        assert first.poll() is None  # the first one trains on undisturbed
    finally:
        first.kill()
        first.wait()


def write_rows(path, rows):
    pd.DataFrame(rows, columns=["path", "label", "split"]).to_csv(path, index=False)
    return str(path)


def test_labels_that_are_not_labels_are_refused(workdir, tmp_path, monkeypatch, capsys):
    table = pd.read_csv(workdir / "labels.csv")
    monkeypatch.chdir(tmp_path)
    blank = table[["path", "label", "split"]].copy()
    blank.loc[blank.index[3], "label"] = ""
    assert train_main(["--labels", write_rows(tmp_path / "blank.csv", blank.values.tolist())]) == 2
    assert "1 row(s) have an empty label (line(s) 5)" in capsys.readouterr().err
    single = table[["path", "split"]].assign(label="Tee")[["path", "label", "split"]]
    assert train_main(["--labels", write_rows(tmp_path / "one.csv", single.values.tolist())]) == 2
    assert "the train split has 1 class (Tee); a classifier needs at least 2" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def run_copy(small_run, tmp_path):
    """A copy of the session's small trained run, free to damage."""
    run, _ = small_run
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def rewrite_classes(run, mapping):
    (run / "classes.json").write_text(json.dumps(mapping))


@pytest.mark.train
@pytest.mark.parametrize("damage, message", [
    (lambda names: {**{str(i): n for i, n in enumerate(names)}, str(len(names)): "Extra"}, "but config.json recorded"),
    (lambda names: {str(i): n for i, n in enumerate(names[:-1])}, "but config.json recorded"),
    (lambda names: {str(i): n for i, n in enumerate([names[1], names[0], *names[2:]])}, "but config.json recorded"),
    (lambda names: {"0": names[0], "2": names[1]}, "must map the output indices 0..n-1"),
    (lambda names: {str(i): "" for i in range(len(names))}, "distinct, non-empty class names"),
])
def test_a_run_folder_that_contradicts_itself_is_refused(run_copy, small_run, damage, message, capsys):
    _, table = small_run
    names = sorted(set(table.label))
    rewrite_classes(run_copy, damage(names))
    image = table.path.iloc[0]
    for command, argv in ((evaluate_main, [str(run_copy)]), (predict_main, [str(run_copy), image])):
        capsys.readouterr()
        assert command(argv) == 2
        assert message in capsys.readouterr().err


@pytest.mark.train
def test_truncated_model_is_one_line_even_after_tensorflow_loads(run_copy):
    data = (run_copy / "model.keras").read_bytes()
    (run_copy / "model.keras").write_bytes(data[: len(data) // 2])
    done = subprocess.run([sys.executable, "-m", "cnn", "evaluate", str(run_copy)], env=ENV, text=True,
                          capture_output=True)
    assert done.returncode == 2
    lines = stderr_lines(done.stderr)
    assert len(lines) == 1 and "model.keras: not a loadable Keras model" in lines[0], lines


@pytest.mark.train
def test_divergence_is_reported_and_the_folder_can_be_reused(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    assert train_main([*tiny_argv(epochs=3), "--lr", "1e12", "--out", "runs/diverged"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("train-cnn: error: training diverged at epoch 1 (the loss became NaN)")
    assert train_main([*tiny_argv(), "--out", "runs/diverged"]) == 0  # a sane --lr starts afresh


@pytest.mark.train  # found in the first epoch's batches: model.fit has begun
def test_a_split_of_undecodable_images_is_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = []
    for i in range(4):
        good, bad = tmp_path / f"good{i}.png", tmp_path / f"bad{i}.jpg"
        Image.new("RGB", (32, 32), (60 * i, 0, 0)).save(good)
        bad.write_bytes(b"not an image at all")
        rows += [(str(bad), "ab"[i % 2], "train"), (str(good), "ab"[i % 2], "val")]
    assert train_main(["--labels", write_rows(tmp_path / "l.csv", rows), *tiny_argv()]) == 2
    err = capsys.readouterr().err  # met first by the default recipe's --whiten, which samples the train split
    assert "none of the 4 images sampled from the 'train' split for --whiten could be decoded" in err
    assert train_main(["--labels", "l.csv", *tiny_argv(), "--no-whiten", "--out", "runs/plain"]) == 2
    assert "none of the 4 images of the 'train' split could be decoded" in capsys.readouterr().err


def test_make_labels_refuses_non_utf8_names_and_outputs_that_would_touch_data(tmp_path, capsys):
    root = tmp_path / "shop"
    (root / "a_Tee").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "a_Tee" / "1.jpg")
    os.makedirs(os.fsencode(root / "b_Tee"))
    Image.new("RGB", (8, 8)).save(os.fsencode(root / "b_Tee") + b"/caf\xe9.jpg", "JPEG")
    assert make_labels_main([str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "caf\\xe9.jpg" in err and "is not valid UTF-8" in err
    os.remove(os.fsencode(root / "b_Tee") + b"/caf\xe9.jpg")
    assert make_labels_main([str(root), "-o", str(root / "labels.csv")]) == 2
    assert "inside the scanned folder" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert make_labels_main([str(root), "-o", str(notes)]) == 2
    assert "exists and is not a .csv file" in capsys.readouterr().err and notes.read_text() == "mine"


@pytest.mark.train
def test_ctrl_c_during_training_is_one_line_and_exit_130(workdir):
    process = start_cnn(["train", *tiny_argv(epochs=200, patience=200), "--out", "runs/ctrl-c"], workdir)
    history = workdir / "runs" / "ctrl-c" / "history.csv"
    assert wait_for(history.exists, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "Traceback" not in err
    assert stderr_lines(err)[-1].startswith("train-cnn: interrupted; run the same command again")
    # A refusal on the resume path is its line alone: no TensorFlow start-up notice before it.
    done = subprocess.run([sys.executable, "-m", "cnn", "train", *tiny_argv(epochs=200, patience=200), "--lr", "0.5",
                           "--out", "runs/ctrl-c"], cwd=workdir, env=ENV, text=True, capture_output=True)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "interrupted run with other options" in lines[0], lines


# A library that swallows the KeyboardInterrupt (a destructor, a bare `except:` in tracing) at the moment Ctrl-C
# lands: here epoch 1's history write, which sends this process a real SIGINT and swallows what Python raises.
SWALLOWED_CTRL_C = """
import os, signal, time
from cnn.training import callbacks
write = callbacks.HistoryFile.on_epoch_end
def write_and_swallow(self, epoch, logs=None):
    write(self, epoch, logs)
    if epoch == 0:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass
callbacks.HistoryFile.on_epoch_end = write_and_swallow
"""


@pytest.mark.train
def test_one_ctrl_c_stops_training_even_when_its_exception_is_swallowed(workdir):
    process = start_cnn(["train", *tiny_argv(epochs=20, patience=20), "--out", "runs/swallowed"], workdir,
                        code=SWALLOWED_CTRL_C)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err[-2000:]
    assert stderr_lines(err)[-1].startswith("train-cnn: interrupted; run the same command again")
    assert len(pd.read_csv(workdir / "runs" / "swallowed" / "history.csv")) <= 2


def test_a_swallowed_ctrl_c_outside_training_still_ends_the_command_with_130(capsys):
    """After training's last check (scoring, export), a press whose exception was lost is still Ctrl-C."""
    def action():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, also under `make test &`
    try:
        assert run_command("train-cnn", action) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert run_command("train-cnn", lambda: 0) == 0  # the press is forgotten once its command has ended
    finally:
        signal.signal(signal.SIGINT, previous)
    assert capsys.readouterr().err == "train-cnn: interrupted\n"


def test_one_line_errors_carry_no_tensorflow_start_up_noise(workdir):
    done = subprocess.run([sys.executable, "-m", "cnn", "train", *tiny_argv(), "--out", "runs/noise", "--labels",
                           "missing.csv"], cwd=workdir, env=ENV, text=True, capture_output=True)
    assert done.returncode == 2 and stderr_lines(done.stderr) == [
        "train-cnn: error: labels CSV missing.csv not found; create it with make-labels or give its path"]



def test_a_run_recorded_by_another_version_is_continued_as_recorded_or_refused():
    from cnn.training.runstate import recorded_options
    from common.errors import UsageError

    old = {"options": {"lr": 1e-3, "augment": "none", "out": "runs/old"}}  # before --recipe: the card's recipe
    assert recorded_options(old, "runs/old") == {"recipe": "card", "whiten": False, "lr": 1e-3, "augment": "none"}
    before_whiten = {"options": {"recipe": "default", "out": "runs/old"}}  # not whitened: it stays so on resume
    assert recorded_options(before_whiten, "runs/old") == {"recipe": "default", "whiten": False}
    with pytest.raises(UsageError, match="recorded by another version of train-cnn \\(options warp_speed\\)"):
        recorded_options({"options": {"warp_speed": 9}}, "runs/new")


@pytest.mark.train
def test_an_image_deleted_during_training_is_finished_by_the_advice_given(sample_labels, tmp_path, monkeypatch,
                                                                          capsys):
    """A test image deleted while the run trains: the report refuses and advises --skip-missing; the same command
    with --skip-missing then writes the report and the finished marker without training again."""
    import keras

    from cnn import runfolder as rf
    from common.errors import MissingFilesError

    monkeypatch.chdir(tmp_path)
    table = sample_labels.copy()
    victim = table[table.split == "test"].path.iloc[0]
    table.loc[table.path == victim, "path"] = str(tmp_path / "victim.jpg")
    shutil.copy(victim, tmp_path / "victim.jpg")
    table.to_csv("labels.csv", index=False)

    class DeleteAtTheEnd(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            (tmp_path / "victim.jpg").unlink()

    with pytest.raises(MissingFilesError, match="--skip-missing"):
        train(out="run", callbacks=[DeleteAtTheEnd()], **TINY)
    assert not rf.run_finished(tmp_path / "run")
    capsys.readouterr()
    assert train_main(["--out", "run", "--skip-missing", *tiny_argv()]) == 0
    assert rf.run_finished(tmp_path / "run") and "writing it now" in capsys.readouterr().err
