"""Shared fixtures: the generated sample tree (once per session) and the location of ../shared data."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data.make_sample import generate

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CLOTHING_SMALL = SHARED / "data" / "clothing-dataset-small"


@pytest.fixture(scope="session")
def sample_tree(tmp_path_factory):
    """A DeepFashion-shaped tree of 6 categories x 60 generated images (img/, Anno/, Eval/)."""
    root = tmp_path_factory.mktemp("sample") / "deepfashion"
    generate(root, per_class=60, seed=0)
    return root


@pytest.fixture(scope="session")
def clothing_small():
    """../shared/data/clothing-dataset-small, or skip the (slow) test that needs it when it is absent."""
    if not CLOTHING_SMALL.is_dir():
        pytest.skip(f"{CLOTHING_SMALL} is absent (the real photos live in ../shared beside the repo)")
    return CLOTHING_SMALL


# What a finished flat run folder holds (the contract of docs/train-cnn.md, "The run folder").
RUN_FILES = [".lock", "calibration.json", "classes.json", "config.json", "confusion.csv", "confusion.png", "curves.png",
             "finished.json", "history.csv", "metrics.json", "model.keras", "reliability.png", "report.html",
             "report.txt", "worst_errors.png"]

# The tiny training that training tests share: the card's network (the default cnn5 needs 94 px) at 32 px, one epoch,
# float32 (the same numbers on any CPU). A test needing more says so: dict(TINY, epochs=2), tiny_argv(epochs=2).
TINY = dict(arch="cnn", image_size=32, epochs=1, precision="float32")


def tiny_argv(**overrides):
    """TINY, with `overrides`, as train-cnn flags: tiny_argv() is ["--image-size", "32", "--epochs", "1",
    "--precision", "float32"]; tiny_argv(epochs=2, recipe="card") changes --epochs and adds --recipe card."""
    argv = []
    for key, value in {**TINY, **overrides}.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


@pytest.fixture(scope="session")
def sample_labels(sample_tree):
    """The sample tree's labels table as make-labels writes it (split by DeepFashion's partition, by product);
    shared by the session: copy it before changing it."""
    from labeling.labels import make_labels

    return make_labels(sample_tree)[0]


@pytest.fixture(scope="session")
def labelled_folder(sample_labels, tmp_path_factory):
    """labelled_folder(name, table=None): a new folder holding labels.csv (the sample's, or `table`), where a test
    module's trainings run and write runs/; a folder per module keeps the modules independent."""

    def make(name, table=None):
        folder = tmp_path_factory.mktemp(name)
        (sample_labels if table is None else table).to_csv(folder / "labels.csv", index=False)
        return folder

    return make


@pytest.fixture(scope="session")
def small_run(labelled_folder, sample_labels):
    """A quickly trained run on the sample tree (32 px, 2 epochs, float32) and its labels DataFrame."""
    from cnn.training.train import train

    folder = labelled_folder("small_run")
    run, _ = train(out=folder / "run", labels=str(folder / "labels.csv"), **dict(TINY, epochs=2))
    return run, sample_labels


def start_cnn(args, cwd, code=None):
    """A train-cnn (or other `python -m cnn`) process; `code` runs first in the same interpreter.

    Ctrl-C is restored to its default in the child: a test suite started as a background job (`make test &`)
    inherits SIGINT ignored, and Python then never turns the tests' SIGINT into KeyboardInterrupt.
    """
    prelude = (code or "") + "\nimport sys\nfrom cnn.__main__ import main\nsys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", prelude, *args], cwd=cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(predicate, process, seconds=120):
    """Poll until predicate() holds or the process ends; True when it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


TRAINING_FIXTURES = ("small_run",)  # fixtures that train: a test using one is marked `train` by that alone


def pytest_collection_modifyitems(config, items):
    """Mark `train` every test that uses a training fixture, so `-m "not train"` deselects it too."""
    for item in items:
        if set(TRAINING_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.train)


@pytest.fixture(autouse=True)
def _unmarked_tests_train_nothing(request, monkeypatch):
    """A test not marked `train` that fits a Keras model in this process fails, naming itself: the inner loop
    `-m "not train"` must train nothing."""
    if request.node.get_closest_marker("train") is not None or request.node.get_closest_marker("slow") is not None:
        yield
        return
    import keras

    def refuse(*args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} trains a model but is not marked train (pytest.mark.train)")

    monkeypatch.setattr(keras.Model, "fit", refuse)
    yield
