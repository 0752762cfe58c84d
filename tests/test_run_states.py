"""A run folder in every state a kill can leave: rerunning the same command finishes it, never reports it half done.

The kills are simulated where they fall between two writes (the files a kill there leaves are removed, or Keras's
backup is cut as a kill while writing it would cut it); tests/test_train.py kills real processes.
"""
import json
import pathlib
import shutil

import pandas as pd
import pytest

from cnn import runfolder as rf
from cnn.cli import train_main
from cnn.training.train import train
from common.hashing import sha256_file
from conftest import TINY, tiny_argv
from interrupt import EpochRecorder, StopAfterEpoch

pytestmark = pytest.mark.train

# The report's files in the order flat.report writes them; the finished marker comes last.
REPORT_ORDER = ["calibration.json", "metrics.json", "report.txt", "confusion.csv", "confusion.png", "reliability.png",
                "curves.png", "report.html", "finished.json"]


@pytest.fixture(scope="module")
def workdir(labelled_folder):
    return labelled_folder("run_states")


@pytest.fixture(scope="module")
def finished(workdir):
    """A finished tiny run (2 epochs) and its metrics."""
    with pytest.MonkeyPatch.context() as m:
        m.chdir(workdir)
        run, metrics = train(out="runs/finished", **dict(TINY, epochs=2))
    return workdir / run, metrics


def test_the_finished_marker_is_written_last(finished):
    run, _ = finished
    times = {name: (run / name).stat().st_mtime_ns for name in REPORT_ORDER}
    assert max(times, key=times.get) == "finished.json"
    marker = json.loads((run / "finished.json").read_text())
    assert marker["model_sha256"] == sha256_file(run / "model.keras")
    assert rf.run_finished(run) and not (run / "backup").exists()


@pytest.mark.parametrize("kept", range(len(REPORT_ORDER)))
def test_a_kill_between_two_report_writes_is_finished_by_the_same_command(finished, workdir, monkeypatch, kept):
    run, metrics = finished
    copy = workdir / "runs" / f"cut-{kept}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy)
    for name in REPORT_ORDER[kept:]:  # the kill came after the first `kept` report files
        (copy / name).unlink()
    if kept < len(REPORT_ORDER) - 1:  # and during the next one's atomic write, whose temporary file stayed
        (copy / f".{REPORT_ORDER[kept]}.k1ll3d{pathlib.Path(REPORT_ORDER[kept]).suffix}").write_bytes(b"torn")
    assert not rf.run_finished(copy)
    monkeypatch.chdir(workdir)
    recorder = EpochRecorder()
    _, again = train(out=f"runs/cut-{kept}", callbacks=[recorder], **dict(TINY, epochs=2))
    assert recorder.epochs == []  # nothing trained again: only the report was missing
    assert all((copy / name).is_file() for name in REPORT_ORDER) and rf.run_finished(copy)
    assert not list(copy.glob(".*k1ll3d*"))  # no torn temporary file stays in the finished folder
    assert again["top1"] == pytest.approx(metrics["top1"]) and again["epochs_run"] == 2
    assert train_main(["--out", f"runs/cut-{kept}", *tiny_argv(epochs=2)]) == 2  # finished now: refused


def interrupted(workdir, name, stop_after, epochs=4):
    """A run interrupted at the end of epoch `stop_after` (0-based): its folder."""
    with pytest.MonkeyPatch.context() as m:
        m.chdir(workdir)
        with pytest.raises(KeyboardInterrupt):
            train(out=f"runs/{name}", callbacks=[StopAfterEpoch(stop_after)], **dict(TINY, epochs=epochs, patience=10))
    return workdir / "runs" / name


def test_a_kill_before_the_first_backup_restarts_the_run_in_its_folder(workdir, monkeypatch):
    run = interrupted(workdir, "first-epoch", 0)
    for path in (run / "backup").iterdir():  # Keras had not written its first backup yet
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert rf.finished_epochs(run) == 0
    monkeypatch.chdir(workdir)
    recorder = EpochRecorder()
    _, metrics = train(out="runs/first-epoch", callbacks=[recorder], **dict(TINY, epochs=4, patience=10))
    assert recorder.epochs == [0, 1, 2, 3]  # from the start, in the same folder
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [0, 1, 2, 3]
    assert metrics["epochs_run"] == 4 and rf.run_finished(run)


def test_a_kill_while_keras_writes_its_backup_falls_back_to_the_bkp_copy(workdir, monkeypatch):
    run = interrupted(workdir, "torn-backup", 2)
    metadata = run / "backup" / "training_metadata.json"
    assert json.loads(metadata.read_text())["epoch"] == 3
    assert json.loads((run / "backup" / "training_metadata.json.bkp").read_text())["epoch"] == 2
    metadata.write_text('{"epo')  # cut short by the kill
    assert rf.finished_epochs(run) == 2
    monkeypatch.chdir(workdir)
    recorder = EpochRecorder()
    train(out="runs/torn-backup", callbacks=[recorder], **dict(TINY, epochs=4, patience=10))
    assert recorder.epochs == [2, 3]  # epoch 3 again (its backup was lost), then the last
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [0, 1, 2, 3]


def test_resume_after_the_last_epoch_writes_only_the_report(workdir, monkeypatch, capsys):
    run = interrupted(workdir, "after-fit", 1, epochs=2)  # the last epoch ended, the trainer was stopped there
    monkeypatch.chdir(workdir)
    assert train_main(["--resume", "--out", "runs/after-fit"]) == 0
    assert rf.run_finished(run)
    shutil.rmtree(run / "backup", ignore_errors=True)
    (run / "finished.json").unlink()  # killed after training, before the marker
    assert rf.report_pending(run)
    capsys.readouterr()
    assert train_main(["--resume", "--out", "runs/after-fit"]) == 0
    assert "finished training but not its report" in capsys.readouterr().err and rf.run_finished(run)


@pytest.mark.parametrize("name, extra, stop", [
    pytest.param("mixed", dict(epochs=3, mix="mixup=0.4"), 0, marks=pytest.mark.slow),  # make test: the next one
    ("progressive-ema", dict(epochs=4, progressive="24:0.5", ema=0.9), 2),  # killed in the second stage
    pytest.param("lookahead", dict(epochs=3, lookahead="3:0.5"), 0, marks=pytest.mark.slow),  # inside a stretch
])
def test_a_resumed_run_is_the_run_it_would_have_been(workdir, monkeypatch, name, extra, stop):
    """Killed and resumed, a shuffled, augmented run with dropout (and mixup, or --progressive with --ema) has the
    uninterrupted run's history: every epoch's order, crops, flips, mix weights and dropout masks are drawn as the
    uninterrupted process drew them (they once restarted from epoch 1's: train accuracy 0.708 against 0.475)."""
    options = dict(TINY, batch_size=8, augment="flip,crop=0.2", dropout=0.5, patience=10, **extra)
    monkeypatch.chdir(workdir)
    train(out=f"runs/whole-{name}", **options)
    with pytest.raises(KeyboardInterrupt):
        train(out=f"runs/resumed-{name}", callbacks=[StopAfterEpoch(stop)], **options)
    train(out=f"runs/resumed-{name}", **options)
    whole, resumed = (pd.read_csv(workdir / "runs" / f"{kind}-{name}" / "history.csv") for kind in ("whole", "resumed"))
    pd.testing.assert_frame_equal(resumed, whole, check_exact=False, rtol=1e-5, atol=1e-6)
