"""--teacher: knowledge distillation from a finished run or a --repeats ensemble into the model being trained.

The student learns from a blend of the labels' cross-entropy and the teacher's softened probabilities on the
very batch it sees (the same augmented, mixed views: "consistent teaching", Beyer et al. 2022):
    loss = (1 - A) * CE(labels, student) + A * T^2 * KL(teacher_T || student_T),  p_T = softmax(log p / T).
The teacher's probabilities are its calibrated ones (each member at its own fitted temperature, averaged for an
ensemble). Validation scores the cross-entropy alone, so val_loss, the best checkpoint and early stopping mean
what they mean in any other run; model.keras is the student alone. The teacher runs on every training batch and
is not cached: with augmentation no two epochs show it the same image.
"""
import math
from pathlib import Path

from cnn.training import log
from cnn.training.refusal import require
from cnn.training.tricks.base import Trick
from common.errors import UsageError



def teacher_runs(path, classes):
    """The teacher's finished runs (one, or an ensemble's members), refused unless they predict `classes` in order."""
    from cnn.runs.predictor import open_run

    teacher = open_run(path)
    if teacher.kind not in ("flat", "ensemble"):
        raise UsageError(f"--teacher {path} is a {teacher.kind} folder; distil from a flat run or a --repeats folder")
    runs = teacher.loaded.runs if teacher.kind == "ensemble" else [teacher.loaded]
    left_out = unfinished_seeds(path) if teacher.kind == "ensemble" else []
    if left_out:
        log(f"warning: --teacher {path}: {', '.join(left_out)} not finished; the teacher is the ensemble of the "
            f"{len(runs)} finished run(s)")
    if runs[0].classes != list(classes):
        raise UsageError(f"--teacher {path} predicts {', '.join(runs[0].classes)}, not this run's classes "
                         f"({', '.join(classes)}); distil from a run trained on the same labels")
    return runs


def teacher_identity(path):
    """config.json's record of --teacher: each finished member's folder and model.keras SHA-256 (one run, or a
    --repeats folder's seeds), so a resumed run refuses a teacher that changed since it started. The hash is the
    one the member's finished.json recorded (loading a run refuses a model.keras that differs from it), so no
    model is read again here."""
    from cnn.runfolder import FINISHED, read_json
    from cnn.runs.ensemble import members_of

    folders = members_of(path) or [Path(path)]
    return {"members": [{"path": str(Path(f).resolve()),
                         "model_sha256": (read_json(Path(f) / FINISHED).get("model_sha256")
                                          if (Path(f) / FINISHED).is_file() else None)}
                        for f in folders]}


def unfinished_seeds(path):
    """The seed-<s>/ folders of a --repeats teacher that are not finished (its ensemble leaves them out)."""
    from cnn.runfolder import run_finished

    return sorted(p.name for p in Path(path).glob("seed-*") if p.is_dir() and not run_finished(p))


def teacher_model(runs):
    """One frozen Keras model: the image (any size, resized to the teacher's) -> the members' mean calibrated
    probabilities."""
    import keras

    from cnn.runs.ensemble import ensemble_model

    image = keras.Input(shape=(None, None, 3), name="image")
    size = runs[0].image_size
    teacher = keras.Model(image, ensemble_model(runs)(keras.layers.Resizing(size, size, name="teacher_size")(image)),
                          name="teacher")
    teacher.trainable = False
    return teacher


def distiller(student, options, classes):
    """The model train-cnn fits with --teacher: the student, whose loss also follows the teacher."""
    import keras

    from cnn.training.tricks.keras_classes import Distiller

    model = Distiller(student, teacher_model(teacher_runs(Path(options.teacher), classes)), options.distill_weight,
                      options.distill_temperature)
    model(keras.ops.zeros((1, options.image_size, options.image_size, 3)))  # built: BackupAndRestore needs it
    return model


class Teacher(Trick):
    """--teacher RUN with --distill-weight and --distill-temperature (the folder itself: TrainOptions.check_paths);
    the fitted model is the distiller around the student."""

    option, off = "teacher", "none"

    def check(self, options):
        require(0 < options.distill_weight <= 1, "distill_weight", options.distill_weight, "must be in (0, 1]")
        require(math.isfinite(options.distill_temperature) and options.distill_temperature > 0,
                "distill_temperature", options.distill_temperature, "must be a finite number > 0")
        if not self.on(options):
            for name in ("distill_weight", "distill_temperature"):
                require(getattr(options, name) == options.__dataclass_fields__[name].default, name,
                        getattr(options, name), "needs --teacher (it shapes the teacher's term of the loss); add "
                        "--teacher RUN or drop it")

    def wrap(self, fitted, options, classes):
        return distiller(fitted, options, classes)
