"""Hierarchical runs on the generated sample: a flat-vs-cascade sweep, the sub-models' rows, the cascade recomputed
from the sub-models, evaluate-cnn's side by side, predict-cnn and show-batch, and resuming an interrupted run."""
import base64
import json
import os
import shutil
import signal

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import TINY, start_cnn, tiny_argv, wait_for
from cnn.cli import evaluate_main, predict_main, sweep_main, train_main
from cnn.data.loader import flow_from_dataframe
from common.hashing import sha256_file
from cnn.inference.predict import predict_images
from cnn.runfolder import load_run
from cnn.inference.show_batch import show_batch
from cnn.training.train import train
from common.errors import UsageError
from serving import Server
from test_hierarchy import SAMPLE_TYPES

LOWER, UPPER = ["Jeans", "Shorts", "Skirt"], ["Hoodie", "Tee"]

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def workdir(labelled_folder):
    """A folder with the sample's labels.csv (with category_type)."""
    return labelled_folder("hierarchy")


@pytest.fixture(scope="module")
def killed_sweep(workdir):
    """sweep-cnn --grid hierarchy=none,category_type, seed 0 only (pairing over seeds is test_sweep.py's), killed
    (-9) while the hierarchical run trains its second sub-model, then run again to the end: (sweep folder, coarse
    model's mtime when killed). Its flat and hierarchical runs are what the other tests read."""
    argv = ["--grid", "hierarchy=none,category_type", "--repeats", "1", "--baseline", "hierarchy=none",
            "--out", "sweep", "--", *tiny_argv(recipe="card")]
    process = start_cnn(["sweep", *argv], workdir)
    run = workdir / "sweep" / "hierarchy=category_type" / "seed-0"
    assert wait_for((run / "lower" / "config.json").exists, process, seconds=600)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = (run / "coarse" / "model.keras").stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        assert sweep_main(argv) == 0
    return workdir / "sweep", kept


@pytest.fixture(scope="module")
def sweep(killed_sweep):
    return killed_sweep[0]


@pytest.fixture(scope="module")
def runs(sweep):
    """(hierarchical run, flat run) of seed 0."""
    return sweep / "hierarchy=category_type" / "seed-0", sweep / "hierarchy=none" / "seed-0"


def test_a_killed_hierarchical_run_keeps_its_finished_sub_models(killed_sweep):
    sweep, kept = killed_sweep
    run = sweep / "hierarchy=category_type" / "seed-0"
    assert (run / "coarse" / "model.keras").stat().st_mtime_ns == kept  # finished before the kill: not retrained
    assert all((run / sub / "metrics.json").is_file() for sub in ("lower", "upper"))
    assert (run / "metrics.json").is_file() and not list(run.glob("*/backup"))


def metrics_of(run):
    return json.loads((run / "metrics.json").read_text())


def test_sweep_gives_the_paired_flat_vs_cascade_difference(sweep):
    rows = pd.read_csv(sweep / "sweep.csv")
    assert rows["configuration"].tolist() == ["hierarchy=none", "hierarchy=category_type"]
    flat, cascade = (metrics_of(sweep / c / "seed-0") for c in rows["configuration"])
    assert rows.loc[1, "top1_diff"] == pytest.approx(cascade["top1"] - flat["top1"])
    assert rows.loc[1, "wall_seconds"] == pytest.approx(cascade["train_seconds"], abs=0.2)  # the sub-models', summed


def test_run_folder_holds_the_record_and_one_complete_run_per_sub_model(runs, workdir):
    run, _ = runs
    assert {p.name for p in run.iterdir()} == {".lock", "classes.json", "config.json", "confusion.csv",
                                               "confusion.png", "finished.json", "hierarchy.csv", "metrics.json",
                                               "reliability.png", "report.html", "report.txt", "coarse", "lower",
                                               "upper"}
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["hierarchy"] == "category_type"
    assert config["labels"]["sha256"] == sha256_file(workdir / "labels.csv")
    assert config["hierarchy"] == {"source": "category_type", "sha256": None, "models": ["coarse", "lower", "upper"]}
    assert pd.read_csv(run / "hierarchy.csv").set_index("label")["parent"].to_dict() == SAMPLE_TYPES
    assert load_run(run, model=False).classes == sorted(SAMPLE_TYPES)
    for sub in ("coarse", "lower", "upper"):
        assert {"model.keras", "metrics.json", "history.csv", "labels.csv", "finished.json"} <= {p.name for p in (run / sub).iterdir()}
    with pytest.raises(UsageError, match="is a hierarchical run: its models are in its sub-folders"):
        load_run(run)  # export-model, --cam...: one model only


def test_sub_models_trained_on_the_right_rows(runs, workdir):
    run, _ = runs
    table = pd.read_csv(workdir / "labels.csv")
    expected = {"coarse": (table, sorted(set(SAMPLE_TYPES.values()))), "lower": (table[table.label.isin(LOWER)], LOWER),
                "upper": (table[table.label.isin(UPPER)], UPPER)}
    for sub, (rows, classes) in expected.items():
        config = json.loads((run / sub / "config.json").read_text())
        assert config["labels"]["rows"] == rows.split.value_counts().to_dict()
        assert load_run(run / sub, model=False).classes == classes
        seen = pd.read_csv(run / sub / "labels.csv")
        assert sorted(seen["path"]) == sorted(os.path.abspath(workdir / p) for p in rows["path"])
        if sub == "coarse":
            assert sorted(zip(seen["path"], seen["label"])) == sorted(
                (os.path.abspath(workdir / p), SAMPLE_TYPES[label]) for p, label in zip(rows["path"], rows["label"]))
        assert {k: v for k, v in config["options"].items() if k not in ("labels", "out", "hierarchy")} == {
            k: v for k, v in json.loads((run / "config.json").read_text())["options"].items()
            if k not in ("labels", "out", "hierarchy")}  # the same options as the run


def test_cascade_figures_recomputed_from_the_sub_models(runs, workdir):
    run, _ = runs
    test = pd.read_csv(workdir / "labels.csv").query("split == 'test'")
    test = test.assign(path=[str(workdir / p) for p in test.path])
    loaded = flow_from_dataframe(test, y_col=None, target_size=(32, 32))
    images = np.concatenate(list(loaded.dataset.as_numpy_iterator()))
    out = {sub: keras.saving.load_model(run / sub / "model.keras").predict(images, verbose=0)
           for sub in ("coarse", "lower", "upper")}
    parents, classes = ["full", "lower", "upper"], sorted(SAMPLE_TYPES)
    soft = np.zeros((len(test), len(classes)))
    for i, label in enumerate(classes):  # p(label) = p(parent) x p(label | parent); Dress alone under full
        parent = SAMPLE_TYPES[label]
        given = 1.0 if parent == "full" else out[parent][:, (LOWER if parent == "lower" else UPPER).index(label)]
        soft[:, i] = out["coarse"][:, parents.index(parent)] * given
    picked = [parents[j] for j in out["coarse"].argmax(axis=1)]
    hard = ["Dress" if p == "full" else (LOWER if p == "lower" else UPPER)[out[p][n].argmax()]
            for n, p in enumerate(picked)]
    truth = test.label.to_numpy()
    metrics = metrics_of(run)
    assert metrics["top1"] == pytest.approx(np.mean(np.array(classes)[soft.argmax(axis=1)] == truth))
    assert metrics["hard_top1"] == pytest.approx(np.mean(np.array(hard) == truth))
    assert metrics["coarse_top1"] == pytest.approx(np.mean(np.array(picked) == [SAMPLE_TYPES[t] for t in truth]))
    wrong = np.array(hard) != truth
    if wrong.any():
        share = np.mean((np.array(picked) != [SAMPLE_TYPES[t] for t in truth])[wrong])
        assert metrics["hard_errors_wrong_parent"] == pytest.approx(share)


def test_evaluate_cnn_compares_with_the_flat_run_on_the_same_rows(runs, workdir, monkeypatch, capsys):
    run, flat = runs
    monkeypatch.chdir(workdir)
    before = metrics_of(run)
    assert evaluate_main([str(run), "--compare", str(flat)]) == 0
    out = capsys.readouterr().out
    assert f"hard top-1:        {before['hard_top1']:.4f}" in out and "fine errors already wrong at the coarse" in out
    assert metrics_of(run)["top1"] == pytest.approx(before["top1"])  # the training report, reproduced
    comparison = json.loads((run / "compare.json").read_text())
    table = {row["key"]: row["values"] for row in comparison["metrics"]}
    assert table["top1"] == [pytest.approx(before["top1"]), pytest.approx(metrics_of(flat)["top1"])]
    assert table["hard_top1"] == [pytest.approx(before["hard_top1"]), None]
    n = comparison["images"]
    counts = [comparison[k] for k in ("both_right", "only_first_right", "only_second_right", "neither_right")]
    assert sum(counts) == n and counts[0] + counts[1] == round(before["top1"] * n)
    assert counts[0] + counts[2] == round(metrics_of(flat)["top1"] * n)
    assert (run / "compare.txt").read_text() in out + "\n"


def test_compare_refuses_a_run_trained_on_another_labels_csv(runs, tmp_path, capsys):
    run, flat = runs
    other = tmp_path / "other"
    shutil.copytree(flat, other)
    config = json.loads((other / "config.json").read_text())
    config["labels"]["sha256"] = "0" * 64
    (other / "config.json").write_text(json.dumps(config))
    assert evaluate_main([str(run), "--compare", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"--compare {other}: it was trained on labels.csv, whose sha256 differs" in err


def test_predict_and_show_batch_use_the_cascade(runs, workdir, monkeypatch, tmp_path, capsys):
    run, _ = runs
    monkeypatch.chdir(workdir)
    test = pd.read_csv("labels.csv").query("split == 'test'")
    results = predict_images(run, test.path.tolist(), top=6)
    assert all(sum(p for _, p in preds) == pytest.approx(1.0) for _, preds in results)  # soft: a distribution
    top1 = np.mean([preds[0][0] == label for (_, preds), label in zip(results, test.label)])
    assert top1 == pytest.approx(metrics_of(run)["top1"])
    drawn = show_batch(errors_run=run, n=4, out_png=tmp_path / "errors.png")
    assert len(drawn) == 4 and (drawn["p_true"].diff().dropna() >= 0).all()
    assert predict_main([str(run), test.path.iloc[0], "--cam", str(tmp_path / "cams")]) == 2
    assert "is a hierarchical run (give one of its sub-model folders)" in capsys.readouterr().err
    with pytest.raises(UsageError, match="is a hierarchical run"):
        show_batch(errors_run=run, n=4, cam=True, out_png=tmp_path / "cams.png")
    assert not (tmp_path / "cams.png").exists()
    assert evaluate_main([str(run / "lower")]) == 0  # every sub-folder is a complete run


def test_serve_cnn_answers_with_the_cascade(runs, workdir):
    """serve-cnn on a hierarchical run: /predict gives predict-cnn's cascade probabilities, no heatmap, and says
    why; the Open Inference Protocol's infer names the same top class."""
    run, _ = runs
    photo = str(workdir / pd.read_csv(workdir / "labels.csv").query("split == 'test'").path.iloc[0])
    [(_, expected)] = predict_images(run, [photo], top=3)
    with open(photo, "rb") as f:
        data = f.read()
    server = Server(run, workdir)
    try:
        assert server.get(f"/v2/models/{run.name}").json()["parameters"]["kind"] == "hierarchical"
        [record] = server.post("/predict?cam=true&top=3", files={"file": ("a.jpg", data)}).json()
        assert [(p["class"], p["probability"]) for p in record["predictions"]] == [
            (c, pytest.approx(p, abs=1e-5)) for c, p in expected]
        assert record["cam"] is None and "hierarchical run" in record["cam_note"]
        body = server.post(f"/v2/models/{run.name}/infer", json={"inputs": [
            {"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(data).decode()]}]}).json()
        assert body["outputs"][1]["data"] == [expected[0][0]]
    finally:
        assert server.stop() == 0


def test_training_into_a_finished_hierarchical_run_is_refused(runs, workdir, monkeypatch, capsys):
    run, flat = runs
    monkeypatch.chdir(workdir)
    assert train_main([*tiny_argv(recipe="card"), "--out", str(run)]) == 2
    assert capsys.readouterr().err.strip().endswith("already holds a trained hierarchical run; choose another --out")
    assert train_main([*tiny_argv(recipe="card"), "--hierarchy", "category_type", "--out", str(flat)]) == 2
    assert "holds a flat run; choose another --out for the hierarchical one" in capsys.readouterr().err


class StopInFit(keras.callbacks.Callback):
    """Interrupt (like Ctrl-C) the `fit`-th model.fit it sees (0-based) at the end of `epoch`."""

    def __init__(self, fit, epoch):
        super().__init__()
        self.fit, self.epoch, self.fits = fit, epoch, -1

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.fits == self.fit and epoch == self.epoch:
            raise KeyboardInterrupt


class FitRecorder(StopInFit):
    """The (fit, epoch) pairs that training ran."""

    def __init__(self):
        super().__init__(None, None)
        self.ran = []

    def on_epoch_begin(self, epoch, logs=None):
        self.ran.append((self.fits, epoch))


def test_an_interrupted_run_continues_with_the_sub_model_it_was_training(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    pd.DataFrame({"label": list(SAMPLE_TYPES), "parent": ["dresses", "tops", "legs", "legs", "skirts", "tops"]}
                 ).to_csv("mapping.csv", index=False)  # Skirt alone: two modelled parents, legs and tops
    options = dict(TINY, hierarchy="mapping.csv", epochs=2, patience=10)
    with pytest.raises(KeyboardInterrupt):
        train(out="runs/h", callbacks=[StopInFit(fit=1, epoch=0)], **options)  # in legs' first epoch
    run = workdir / "runs" / "h"
    assert (run / "coarse" / "metrics.json").exists() and (run / "legs" / "backup").is_dir()
    assert not (run / "tops" / "config.json").exists() and not (run / "metrics.json").exists()  # tops not started
    kept = (run / "coarse" / "model.keras").stat().st_mtime_ns
    recorder = FitRecorder()
    train(out=run, resume=True, callbacks=[recorder])  # --resume, naming the run by its absolute path this time
    assert recorder.ran == [(0, 1), (1, 0), (1, 1)]  # legs' second epoch, then tops
    assert (run / "coarse" / "model.keras").stat().st_mtime_ns == kept
    assert pd.read_csv(run / "legs" / "history.csv")["epoch"].tolist() == [0, 1]
    metrics = metrics_of(run)
    assert metrics["parents"] == 4 and set(metrics["sub_models"]) == {"coarse", "legs", "tops"}
    assert json.loads((run / "config.json").read_text())["hierarchy"]["sha256"] == sha256_file("mapping.csv")
