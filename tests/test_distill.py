"""--teacher: the student's training loss is the stated blend of the labels' cross-entropy and the KL divergence
to the teacher's softened probabilities on the same batch; validation is the cross-entropy alone; model.keras is
the student."""
import json
from pathlib import Path

import numpy as np
import pytest

from cnn.training.options import TrainOptions
from common.errors import UsageError
from conftest import TINY

A, T = 0.7, 3.0


def softened(p, t):
    logits = np.log(np.clip(p, 1e-7, 1)) / t
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def teacher_and_batch(small_run):
    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe
    from cnn.runfolder import load_run

    run_dir, df = small_run
    run = load_run(run_dir)
    rows = df[df.split == "val"].head(8)
    images, labels = next(iter(flow_from_dataframe(rows, classes=run.classes, target_size=(32, 32),
                                                   batching=Batching(batch_size=8)).dataset))
    return run_dir, run, np.asarray(images), np.asarray(labels)


def test_the_training_loss_is_the_stated_blend_and_validation_the_labels_alone(teacher_and_batch):
    import keras

    from cnn.models.architectures import build_cnn
    from cnn.training.tricks.teacher import distiller

    run_dir, run, images, labels = teacher_and_batch
    options = TrainOptions(teacher=str(run_dir), distill_weight=A, distill_temperature=T, **TINY)
    keras.utils.set_random_seed(1)
    model = distiller(build_cnn(len(run.classes), (32, 32, 3)), options, run.classes)
    model.compile(loss="categorical_crossentropy")
    student = np.asarray(model.student.predict_on_batch(images), np.float64)
    teacher = softened(np.asarray(run.model.predict_on_batch(images), np.float64), run.temperature)
    ce = -np.mean(np.sum(labels * np.log(np.clip(student, 1e-7, 1)), axis=1))
    target, s = softened(teacher, T), softened(student, T)
    kl = np.mean(np.sum(target * (np.log(target) - np.log(s)), axis=1))
    got = float(model.compute_loss(images, labels, model.student(images), training=True))
    assert got == pytest.approx((1 - A) * ce + A * T * T * kl, rel=1e-4)
    assert float(model.compute_loss(images, labels, model.student(images), training=False)) == pytest.approx(ce,
                                                                                                           rel=1e-4)
    assert abs(got - ce) > 1e-3  # the teacher's term is not negligible here (or the test would prove nothing)


def test_teacher_options_are_checked(small_run, tmp_path):
    moved = TrainOptions(teacher=str(tmp_path))  # a recorded config rebuilds though its teacher has moved
    with pytest.raises(UsageError, match="--teacher .* is not a finished"):
        moved.check_paths()  # where a run starts
    with pytest.raises(UsageError, match="--distill-weight 0"):
        TrainOptions(teacher=str(small_run[0]), distill_weight=0)
    with pytest.raises(UsageError, match="--distill-temperature -1"):
        TrainOptions(teacher=str(small_run[0]), distill_temperature=-1)


@pytest.mark.train
# bfloat16: a teacher's and student's outputs in mixed precision (float32, the plain case, in make test-slow)
@pytest.mark.parametrize("precision", [pytest.param("float32", marks=pytest.mark.slow), "mixed_bfloat16"])
def test_a_distilled_run_saves_the_student_alone(small_run, labelled_folder, monkeypatch, precision):
    from cnn.training.train import train
    from common.keras_model import load_keras_model

    monkeypatch.chdir(labelled_folder(f"distill-{precision}"))
    teacher = small_run[0]
    if precision != "float32":  # an ensemble teacher: its mean is a layer built under the student's policy
        from cnn.experiments.repeats import train_repeats

        teacher = Path("runs/teachers")
        train_repeats(teacher, 2, dict(TINY, precision=precision))
    run, metrics = train(out="runs/student", teacher=str(teacher), **dict(TINY, epochs=2, precision=precision))
    assert json.loads((run / "config.json").read_text())["options"]["teacher"] == str(teacher)
    model = load_keras_model(run / "model.keras")
    assert model.name == "clothing_cnn" and "teacher" not in [layer.name for layer in model.layers]
    assert metrics["images"] > 0 and (run / "finished.json").is_file()


@pytest.mark.train
def test_a_resumed_student_refuses_a_teacher_that_changed(small_run, labelled_folder, monkeypatch, capsys):
    """The teacher's identity (each member's model.keras SHA-256) is in config.json; a teacher folder replaced by
    another run between the kill and the resume is refused in one line, not a crash inside Keras."""
    import shutil

    from cnn.cli import train_main
    from cnn.training.train import train
    from conftest import tiny_argv
    from interrupt import StopAfterEpoch

    monkeypatch.chdir(labelled_folder("distill-resume"))
    shutil.copytree(small_run[0], "teacher")
    with pytest.raises(KeyboardInterrupt):
        train(out="runs/student", teacher="teacher", callbacks=[StopAfterEpoch(0)], **dict(TINY, epochs=3))
    record = json.loads(Path("runs/student/config.json").read_text())["teacher"]
    assert record["members"][0]["model_sha256"] == json.loads(Path("teacher/finished.json").read_text())["model_sha256"]
    shutil.rmtree("teacher")
    train(out="teacher", **dict(TINY, epochs=1, seed=5))  # another run in the teacher's place
    capsys.readouterr()
    assert train_main(["--out", "runs/student", "--teacher", "teacher", *tiny_argv(epochs=3)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not the teacher runs/student started with" in err[0], err


@pytest.mark.train
def test_a_repeats_teacher_with_an_unfinished_seed_says_which(small_run, labelled_folder, monkeypatch, capsys):
    import shutil

    from cnn.training.train import train

    monkeypatch.chdir(labelled_folder("distill-partial"))
    shutil.copytree(small_run[0], "rep/seed-0")
    Path("rep/seed-1").mkdir()  # a seed still training (or killed): not finished
    train(out="runs/student", teacher="rep", **TINY)
    assert "warning: --teacher rep: seed-1 not finished; the teacher is the ensemble of the 1 finished run(s)" \
        in capsys.readouterr().err
