"""A run folder opened for scoring, flat, hierarchical or an ensemble (decided here once): its record and a
scorer."""
from dataclasses import dataclass
from functools import partial

from cnn.data.hierarchy import is_hierarchical
from cnn.evaluation.ensemble import is_ensemble, load_ensemble, score_ensemble
from cnn.evaluation.hierarchical_run import load_cascade, score_cascade
from cnn.evaluation.scoring import score_model
from cnn.runfolder import load_run


@dataclass(frozen=True)
class Scorable:
    """A run ready to score: its record (cnn.runfolder.Run of the top folder) and its scorer."""

    run: object
    score: object  # (rows, batch_size, skip_missing, data) -> (true class indices, probabilities, metrics)
    explained: object = None  # a flat run's Run, whose model's heatmaps explain its predictions (None otherwise)


def open_scorable(run_dir, tta="none"):
    """Open a run folder once, its model(s) loaded and checked against the folder before any image is read;
    its scorer averages over flips with tta "flip". A --repeats parent folder opens as the ensemble of its runs."""
    if is_ensemble(run_dir):
        ensemble = load_ensemble(run_dir)
        return Scorable(ensemble.run, partial(score_ensemble, ensemble, tta=tta))
    if is_hierarchical(run_dir):
        cascade = load_cascade(run_dir)
        return Scorable(cascade.run, partial(score_cascade, cascade, tta=tta))
    run = load_run(run_dir)
    return Scorable(run, partial(score_model, run, tta=tta), explained=run)
