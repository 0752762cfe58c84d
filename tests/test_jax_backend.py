"""Keras's JAX backend: the same tiny recipe trains into the same run folder as on TensorFlow (tf.data still
feeds it), other commands read that folder, and an interrupted run refuses to continue on another backend."""
import json
import os
import signal
import time

import pandas as pd
import pytest

from conftest import RUN_FILES, TINY, start_cnn, tiny_argv
from interrupt import StopAfterEpoch

pytest.importorskip("jax", reason="the jax extra is not installed: pip install -e '.[jax]'")
ON_JAX = "import os\nos.environ['KERAS_BACKEND'] = 'jax'"  # before Keras is imported, as Keras requires


def train_on_jax(folder, *argv):
    """train-cnn in a new process on the JAX backend; (exit status, stderr)."""
    process = start_cnn(["train", *argv], folder, code=ON_JAX)
    _, err = process.communicate(timeout=600)
    return process.returncode, err


@pytest.fixture(scope="module")
def folder(labelled_folder):
    return labelled_folder("jax")


@pytest.mark.slow  # 50-90 s: make test-slow (the fast set trains on JAX in test_numpy_loader.py)
@pytest.mark.train
def test_the_same_recipe_makes_the_same_run_folder_on_both_backends(folder, monkeypatch):
    from cnn.cli import evaluate_main
    from cnn.training.train import train

    monkeypatch.chdir(folder)
    code, err = train_on_jax(folder, *tiny_argv(epochs=2, ema=0.9), "--out", "runs/jax")
    assert code == 0, err
    train(out="runs/tf", **dict(TINY, epochs=2, ema=0.9))
    for backend, run in (("jax", folder / "runs" / "jax"), ("tensorflow", folder / "runs" / "tf")):
        assert sorted(p.name for p in run.iterdir()) == RUN_FILES, backend
        config = json.loads((run / "config.json").read_text())
        assert config["backend"] == backend and config["options"]["ema"] == 0.9
    trained = json.loads((folder / "runs" / "jax" / "metrics.json").read_text())
    # This process runs TensorFlow: the JAX run's model.keras scores the same test images the same way.
    assert evaluate_main(["runs/jax", "--split", "val"]) == 0
    assert evaluate_main(["runs/jax"]) == 0
    again = json.loads((folder / "runs" / "jax" / "metrics.json").read_text())
    assert again["images"] == trained["images"] and abs(again["top1"] - trained["top1"]) <= 1 / trained["images"]


@pytest.mark.train
def test_an_interrupted_run_continues_only_on_its_own_backend(folder, monkeypatch):
    from cnn.training.train import train

    monkeypatch.chdir(folder)
    with pytest.raises(KeyboardInterrupt):
        train(out="runs/cut", callbacks=[StopAfterEpoch(0)], **dict(TINY, epochs=2))
    code, err = train_on_jax(folder, *tiny_argv(epochs=2), "--out", "runs/cut")
    assert code == 2
    assert err.strip().splitlines()[-1] == ("train-cnn: error: runs/cut started on Keras's tensorflow backend, this "
                                            "process runs jax; continue it with KERAS_BACKEND=tensorflow")
    assert os.path.isdir(folder / "runs" / "cut" / "backup")  # untouched: the right backend can still resume it


def start_processes(folder, argv, out):
    """Two train-cnn processes of one keras.distribution cluster on 127.0.0.1 (process 0 the chief)."""
    from cnn.training.distribute.strategy import free_loopback_ports

    [port] = free_loopback_ports(1)
    return [start_cnn(["train", *argv, "--strategy", "multiworker", "--out", out], folder,
                      code=f"{ON_JAX}\nos.environ.update(KERAS_DISTRIBUTION_JOB_ADDRESSES='127.0.0.1:{port}', "
                           f"KERAS_DISTRIBUTION_NUM_PROCESSES='2', KERAS_DISTRIBUTION_PROCESS_ID='{i}')")
            for i in (0, 1)]


@pytest.mark.slow  # 50-90 s: make test-slow (the fast set trains on JAX in test_numpy_loader.py)
@pytest.mark.train
def test_two_jax_processes_on_loopback_train_one_run(folder, monkeypatch):
    """keras.distribution across two processes on this machine (JAX's gloo CPU collectives): one model (the worker's
    epochs the very same numbers), the chief's folder complete and readable, its accuracy near one process's with the
    same global batch (as tests/test_strategy.py asks of TensorFlow's multiworker: 0.15)."""
    from cnn.cli import evaluate_main

    argv = tiny_argv(epochs=8, patience=20, recipe="card")  # learns the sample in 8 epochs (tests/test_strategy.py)
    processes = start_processes(folder, argv, "runs/two")
    errs = [p.communicate(timeout=600)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], errs
    epochs = [[line for line in err.splitlines() if "step - " in line] for err in errs]
    assert len(epochs[0]) == 8 and [e.split("step - ")[1] for e in epochs[0]] == \
        [e.split("step - ")[1] for e in epochs[1]]  # the same losses and accuracies on both: one model
    run = folder / "runs" / "two"
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    config = json.loads((run / "config.json").read_text())
    assert config["backend"] == "jax" and config["options"]["strategy"] == "multiworker"
    monkeypatch.chdir(folder)
    assert evaluate_main(["runs/two"]) == 0
    code, err = train_on_jax(folder, *argv, "--out", "runs/one")
    assert code == 0, err
    one, two = (json.loads((run.parent / name / "metrics.json").read_text())["top1"] for name in ("one", "two"))
    assert abs(one - two) <= 0.15 and two > 1 / 6  # above chance (six classes)


def saved_epoch(metadata):
    """The epoch Keras's backup metadata holds (0 while it is absent or being written)."""
    try:
        return json.loads(metadata.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
@pytest.mark.train
def test_a_killed_jax_process_restarted_continues_the_run(folder):
    argv = tiny_argv(image_size=64, epochs=30, patience=30, recipe="card")
    first = start_processes(folder, argv, "runs/killed")
    metadata = folder / "runs" / "killed" / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 300
    while saved_epoch(metadata) < 2 and time.monotonic() < deadline and first[0].poll() is None:
        time.sleep(0.2)
    first[1].send_signal(signal.SIGKILL)  # the non-chief dies mid-training
    err = first[0].communicate(timeout=300)[1]
    first[1].communicate(timeout=60)
    assert first[0].returncode == 1 and err.strip().splitlines()[-1].endswith(
        "restart every process with the same command to continue from the last finished epoch")
    done = json.loads(metadata.read_text())["epoch"]
    assert 2 <= done < 30
    second = start_processes(folder, argv, "runs/killed")
    errs = [p.communicate(timeout=600)[1] for p in second]
    assert [p.returncode for p in second] == [0, 0], errs[0][-2000:]
    assert f"resuming runs/killed after epoch {done}" in errs[0]
    run = folder / "runs" / "killed"
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    assert pd.read_csv(run / "history.csv").epoch.tolist() == list(range(30))

