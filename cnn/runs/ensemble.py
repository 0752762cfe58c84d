"""An ensemble: the finished runs of a `--repeats` parent folder (OUT/seed-<s>/), their probabilities averaged.

Each member's probabilities are taken at its own calibrated temperature before the mean, so the ensemble's
probabilities are a mean of calibrated ones. Members must share classes (in order) and input size.
"""
from dataclasses import dataclass
from pathlib import Path

from cnn.runfolder import CONFIG, Run, load_run, run_finished
from cnn.runs.temperature import at_temperature
from common.errors import UsageError


def members_of(path):
    """The finished seed-<s>/ run folders of a --repeats parent, sorted; [] for anything else."""
    path = Path(path)
    if not path.is_dir() or (path / CONFIG).is_file():
        return []
    return sorted(p for p in path.glob("seed-*") if p.is_dir() and run_finished(p))


def is_ensemble(path):
    """True for a --repeats parent folder holding finished runs."""
    return bool(members_of(path))


@dataclass
class Ensemble:
    """The loaded members and what they agree on."""

    runs: list  # cnn.runfolder.Run, each with its model

    @property
    def run(self):
        """The first member's record (its labels CSV and options stand for the ensemble's)."""
        return self.runs[0]

    @property
    def classes(self):
        return self.runs[0].classes

    @property
    def image_size(self):
        return self.runs[0].image_size

    def as_run(self):
        """The ensemble as one run (its members' mean calibrated probabilities in one model), for export-model."""
        first = self.runs[0]
        return EnsembleRun(first.path, first.config, first.classes, ensemble_model(self.runs),
                           members=tuple(str(r.path) for r in self.runs), folder=first.path.parent)

    def predict_on_batch(self, images):
        """The mean over the members of their probabilities, each at its calibrated temperature."""
        import numpy as np

        return np.mean([at_temperature(r.model.predict_on_batch(images), r.temperature) for r in self.runs], axis=0)


@dataclass
class EnsembleRun(Run):
    """An ensemble as one run for export-model: its model is `ensemble_model`'s (calibration inside, so served at
    temperature 1), its path the first member's (whose labels CSV the int8 calibration reads)."""

    members: tuple = ()
    folder: Path = None  # the --repeats folder
    temperature = 1.0  # each member's own temperature is folded into its classifier

    @property
    def source(self):
        return self.folder


def calibrated_copy(run, name):
    """A copy of a run's model named `name` whose softmax gives its calibrated probabilities: softmax(z / T) is
    softmax(log p / T), so dividing the classifier's kernel and bias by T is temperature scaling, exactly."""
    import keras

    model = keras.Model.from_config({**run.model.get_config(), "name": name})
    model.set_weights(run.model.get_weights())
    classifier = model.layers[-1]
    if not isinstance(classifier, keras.layers.Dense) or classifier.get_config()["activation"] != "softmax":
        raise UsageError(f"{run.path}: the model does not end in a softmax Dense layer; it cannot join an ensemble")
    classifier.set_weights([w / run.temperature for w in classifier.get_weights()])
    return model


def ensemble_model(runs):
    """One Keras model of standard layers: the image -> the mean of the members' calibrated probabilities (what
    Ensemble.predict_on_batch computes), for export-model and --teacher; float32 under any global policy, as
    each member's softmax is."""
    import keras

    image = keras.Input(shape=runs[0].model.inputs[0].shape[1:], name="image")
    outputs = [calibrated_copy(run, f"member_{i}")(image) for i, run in enumerate(runs)]
    mean = outputs[0] if len(outputs) == 1 else keras.layers.Average(name="mean", dtype="float32")(outputs)
    return keras.Model(image, mean, name="ensemble")


def load_ensemble(path):
    """Load every finished member of a --repeats parent, refused when they disagree on classes or input size."""
    folders = members_of(path)
    if not folders:
        raise UsageError(f"{path} holds no finished seed-<s>/ run: give a train-cnn --repeats folder")
    runs = [load_run(folder) for folder in folders]
    odd = [r.path for r in runs if r.classes != runs[0].classes or r.image_size != runs[0].image_size]
    if odd:
        raise UsageError(f"{odd[0]} has other classes or another input size than {runs[0].path}; an ensemble "
                         f"averages runs of the same classes and size")
    return Ensemble(runs)
