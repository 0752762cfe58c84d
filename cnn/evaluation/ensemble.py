"""An ensemble: the finished runs of a `--repeats` parent folder (OUT/seed-<s>/), their probabilities averaged.

Each member's probabilities are taken at its own calibrated temperature before the mean, so the ensemble's
probabilities are a mean of calibrated ones. Members must share classes (in order) and input size.
"""
from dataclasses import dataclass
from pathlib import Path

from cnn.evaluation.calibration import scaled
from cnn.evaluation.metrics import classification_metrics
from cnn.evaluation.scoring import predict_rows, scoring_record
from cnn.evaluation.tta import with_tta
from cnn.runfolder import CONFIG, load_run, run_finished
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

    def predict_on_batch(self, images):
        """The mean over the members of their probabilities, each at its calibrated temperature."""
        import numpy as np

        return np.mean([scaled(np.asarray(r.model.predict_on_batch(images), np.float64), r.temperature)
                        for r in self.runs], axis=0)


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


def score_ensemble(ensemble, rows, batch_size=32, skip_missing=False, data="none", tta="none"):
    """(true class indices, the ensemble's probabilities, metrics, noting the members) on labelled rows."""
    truth, probs, skipped = predict_rows(with_tta(ensemble, tta), rows, ensemble.classes, ensemble.image_size,
                                         batch_size, skip_missing, data)
    return truth, probs, {**classification_metrics(truth, probs, ensemble.classes),
                          "ensemble": {"members": [str(r.path) for r in ensemble.runs], "n": len(ensemble.runs)},
                          **scoring_record(rows, truth, probs, ensemble.classes, skipped, data, tta)}
