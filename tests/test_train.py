"""train-cnn on the generated sample: a train -> evaluate -> predict round trip, and resuming an interrupted run."""
import json
import signal

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import RUN_FILES, TINY, start_cnn, tiny_argv, wait_for
from interrupt import EpochRecorder, StopAfterEpoch
from cnn.cli import evaluate_main, predict_main, train_main
from cnn.data.loader import flow_from_dataframe
from cnn.training.precision import resolve_precision
from cnn.inference.predict import predict_images
from common.hashing import sha256_file
from cnn.training.train import train
from labeling.labels import make_labels


pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def workdir(labelled_folder):
    """A folder holding labels.csv for the sample tree (split by DeepFashion's partition, by product)."""
    return labelled_folder("train")


@pytest.fixture(scope="module")
def trained(workdir):
    """`train-cnn` at 64 px, run once for the module: (run folder, labels DataFrame)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        rc = train_main(["--arch", "cnn", "--image-size", "64", "--epochs", "12", "--patience", "3", "--precision", "float32",
                         "--out", "runs/sample", "--seed", "0"])
    assert rc == 0
    return workdir / "runs" / "sample", pd.read_csv(workdir / "labels.csv")


def test_run_folder_holds_every_file(trained):
    run, _ = trained
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES  # backup/ removed once training finished


def test_config_records_options_labels_hash_and_versions(trained, workdir):
    run, df = trained
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["image_size"] == 64 and config["options"]["lr"] == 1e-3
    assert config["labels"]["sha256"] == sha256_file(workdir / "labels.csv")
    assert config["labels"]["rows"] == df.split.value_counts().to_dict()
    assert config["precision"] == "float32"
    assert config["versions"]["keras"] == keras.__version__
    import tensorflow as tf

    assert config["versions"]["tensorflow"] == tf.__version__  # installed as tensorflow-cpu
    classes = json.loads((run / "classes.json").read_text())
    assert [classes[str(i)] for i in range(len(classes))] == sorted(set(df.label))
    assert config["classes"] == sorted(set(df.label))  # the record classes.json is checked against


def test_history_has_one_row_per_epoch_and_best_model_is_lowest_val_loss(trained):
    run, df = trained
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == list(range(len(history)))
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.columns)
    model = keras.saving.load_model(run / "model.keras")  # saved compiled: loss and accuracy
    val = flow_from_dataframe(df[df.split == "val"], classes=sorted(set(df.label)), target_size=(64, 64)).dataset
    loss, _ = model.evaluate(val, verbose=0)
    assert loss == pytest.approx(history["val_loss"].min(), rel=1e-3)


def test_test_accuracy_far_above_chance(trained):
    run, df = trained
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["images"] == (df.split == "test").sum()
    # 6 classes: chance is 1/6 ~ 0.17.
    assert metrics["top1"] >= 0.6, metrics["top1"]
    assert metrics["top1"] <= metrics["top3"] <= metrics["top5"]


def test_evaluate_cnn_reproduces_training_report(trained, workdir, monkeypatch, capsys):
    run, _ = trained
    monkeypatch.chdir(workdir.parent)  # the run's own CSV paths resolve from where it trained
    before = json.loads((run / "metrics.json").read_text())
    assert evaluate_main([str(run)]) == 0
    after = json.loads((run / "metrics.json").read_text())
    for key in ("top1", "top3", "top5", "balanced_accuracy", "macro_f1"):
        assert after[key] == pytest.approx(before[key])
    assert f"top-1 accuracy:    {before['top1']:.4f}" in capsys.readouterr().out


def test_predict_agrees_with_test_metrics(trained, workdir):
    run, df = trained
    test = df[df.split == "test"]
    results = predict_images(run, test.path.tolist(), top=3)
    predicted = [preds[0][0] for _, preds in results]
    accuracy = np.mean(np.array(predicted) == test.label.to_numpy())
    assert accuracy == pytest.approx(json.loads((run / "metrics.json").read_text())["top1"])
    for _, preds in results:
        probs = [p for _, p in preds]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_predict_cnn_csv_output(trained, capsys):
    run, df = trained
    image = df[df.split == "test"].path.iloc[0]
    assert predict_main([str(run), image, "--top", "2", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "path,rank,class,probability"
    assert [line.split(",")[:2] for line in lines[1:]] == [[image, "1"], [image, "2"]]


def test_rerun_after_interruption_continues_from_saved_epoch(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    options = dict(TINY, epochs=4, patience=10, precision="auto")
    with pytest.raises(KeyboardInterrupt):
        train(out="runs/interrupted", callbacks=[StopAfterEpoch(1)], **options)
    run = workdir / "runs" / "interrupted"
    assert (run / "backup").is_dir() and not (run / "metrics.json").exists()
    first = pd.read_csv(run / "history.csv")
    assert first["epoch"].tolist() == [0, 1]

    recorder = EpochRecorder()
    train(out="runs/interrupted", callbacks=[recorder], **options)
    assert recorder.epochs == [2, 3]  # epochs 1-2 were not run again
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(history.iloc[:2], first)  # the earlier epochs' rows are kept, not rewritten
    assert not (run / "backup").exists() and (run / "metrics.json").exists()
    assert json.loads((run / "config.json").read_text())["precision"] == resolve_precision("auto")


def test_resume_flag_continues_newest_interrupted_run_with_its_options(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    with pytest.raises(KeyboardInterrupt):
        train(out="runs/resume-me", callbacks=[StopAfterEpoch(0)], **dict(TINY, epochs=2, patience=10))
    # Only --resume and a longer --epochs: the image size, patience... come from the run's config.json.
    assert train_main(["--resume", "--epochs", "3"]) == 0
    history = pd.read_csv(workdir / "runs" / "resume-me" / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    assert json.loads((workdir / "runs" / "resume-me" / "metrics.json").read_text())["images"] > 0


@pytest.mark.slow  # 20 epochs, 19 s: kept out of make test
def test_resume_with_the_default_epoch_count_is_honoured(workdir, monkeypatch):
    # 20 is also --epochs' default: the old CLI compared with the parser's defaults and dropped it.
    monkeypatch.chdir(workdir)
    with pytest.raises(KeyboardInterrupt):
        train(out="runs/five", callbacks=[StopAfterEpoch(1)], **dict(TINY, epochs=5, patience=50))
    assert train_main(["--resume", "--out", "runs/five", "--epochs", "20"]) == 0
    history = pd.read_csv(workdir / "runs" / "five" / "history.csv")
    assert history["epoch"].tolist() == list(range(20))
    assert json.loads((workdir / "runs" / "five" / "metrics.json").read_text())["epochs_run"] == 20


def test_training_into_a_finished_run_is_refused(trained, workdir, monkeypatch, capsys):
    run, _ = trained
    monkeypatch.chdir(workdir)
    before = (run / "model.keras").read_bytes()
    assert train_main(["--arch", "cnn", "--image-size", "64", "--out", "runs/sample"]) == 2
    assert capsys.readouterr().err.strip() == ("train-cnn: error: runs/sample already holds a trained model; "
                                               "choose another --out")
    assert (run / "model.keras").read_bytes() == before


def test_balanced_class_weights_by_hand():
    from cnn.data.datasets import balanced_class_weights

    # n = 4 images, k = 2 classes: weight_c = n / (k * n_c) -> a: 4 / (2 * 3), b: 4 / (2 * 1)
    weights = balanced_class_weights(pd.Series(["a", "b", "a", "a"]), ["a", "b"])
    assert weights == pytest.approx({0: 2 / 3, 1: 2.0})


def test_class_weight_balanced_is_recorded(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    run, metrics = train(out="runs/weighted", class_weight="balanced", **TINY)
    df = pd.read_csv("labels.csv")
    counts = df[df.split == "train"].label.value_counts()
    recorded = json.loads((run / "config.json").read_text())["class_weight"]
    expected = {str(i): counts.sum() / (len(counts) * counts[c]) for i, c in enumerate(sorted(counts.index))}
    assert recorded == pytest.approx(expected)
    assert metrics["epochs_run"] == 1 and metrics["best_epoch"] == 1


def test_rerun_after_sigkill_continues(workdir, monkeypatch):
    """A real kill -9 of a train-cnn process, then the same command again."""
    monkeypatch.chdir(workdir)
    options = dict(TINY, epochs=5, patience=10)
    process = start_cnn(["train", *tiny_argv(**options), "--out", "runs/killed"], workdir)
    metadata = workdir / "runs" / "killed" / "backup" / "training_metadata.json"
    assert wait_for(metadata.exists, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = json.loads(metadata.read_text())["epoch"]
    assert 1 <= done < 5
    recorder = EpochRecorder()
    train(out="runs/killed", callbacks=[recorder], **options)
    assert recorder.epochs == list(range(done, 5))
    assert pd.read_csv(workdir / "runs" / "killed" / "history.csv")["epoch"].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_real_photos_learn_far_above_the_majority_class(clothing_small, tmp_path):
    """clothing-dataset-small at 64 px for 3 epochs: test top-1 well above always guessing t-shirt."""
    table, _ = make_labels(clothing_small)
    table.to_csv(tmp_path / "labels.csv", index=False)
    test = table[table.split == "test"]
    majority = test.label.value_counts().iloc[0] / len(test)  # 73 of the 372 test photos are shoes: 0.196
    _, metrics = train(out=tmp_path / "run", labels=str(tmp_path / "labels.csv"), arch="cnn", image_size=64,
                       epochs=3, precision="float32")
    assert metrics["top1"] > 2 * majority
    assert metrics["top5"] > metrics["top3"] > metrics["top1"]


def test_auto_precision_keeps_learning_on_this_machine(workdir, tmp_path):
    """The guard against a bfloat16 collapse (seen with AMX): in the precision auto picks here, training
    accuracy, once well above the largest class's share, never falls back to it."""
    _, metrics = train(out=tmp_path / "auto", labels=str(workdir / "labels.csv"), arch="cnn", image_size=48,
                       epochs=10, patience=10, recipe="card")
    history = pd.read_csv(tmp_path / "auto" / "history.csv")
    table = pd.read_csv(workdir / "labels.csv")
    majority = table[table.split == "train"].label.value_counts(normalize=True).iloc[0]
    peak = history["accuracy"].cummax()
    assert history["accuracy"].iloc[-1] > 2 * majority
    assert not ((peak > 2 * majority) & (history["accuracy"] <= majority + 0.05)).any()
