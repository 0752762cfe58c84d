"""A hierarchical run folder at prediction time: its sub-models loaded and checked against its record and run
together as one model (its metrics are cnn.evaluation.cascade's)."""
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from cnn.data.hierarchy import COARSE, read_mapping
from cnn.runfolder import CLASSES, HIERARCHY, load_run
from cnn.runs.tree import Tree, soft_probabilities
from common.errors import UsageError


@dataclass
class Cascade:
    """A hierarchical run's models: the coarse one and one per modelled parent, with the tree they form."""

    tree: Tree
    image_size: int
    coarse: object  # Keras model: images -> p(parent)
    fine: dict  # parent -> Keras model: images -> p(label | parent)
    run: object = None  # the top folder's cnn.runfolder.Run record (config, classes; no model)

    def predict_on_batch(self, images):
        """Every model's outputs side by side, coarse first (what `split` takes apart): so evaluation runs the
        cascade as it runs one Keras model."""
        import numpy as np

        with quiet_retracing():
            outputs = [self.coarse.predict_on_batch(images)] + [self.fine[p].predict_on_batch(images)
                                                                 for p in self.tree.modelled]
        return np.concatenate([np.asarray(o, dtype=np.float64) for o in outputs], axis=1)

    def split(self, outputs):
        """(coarse probabilities, {parent: its model's probabilities}) from `predict_on_batch`'s columns."""
        start, fine = len(self.tree.parents), {}
        for parent in self.tree.modelled:
            width = len(self.tree.children[parent])
            fine[parent] = outputs[:, start:start + width]
            start += width
        return outputs[:, :len(self.tree.parents)], fine

    def soft(self, outputs):
        """The soft cascade's p(label) from `predict_on_batch`'s columns."""
        return soft_probabilities(self.tree, *self.split(outputs))


@contextlib.contextmanager
def quiet_retracing():
    """Silence TensorFlow's Python logger for the block: several models each tracing their predict function
    on a first batch and on a smaller last one trip its "triggered tf.function retracing" warning, which is
    expected here and says nothing to the user."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def sub_model(folder, expected):
    """A sub-model's Keras model, refused when its classes are not the ones the run's record expects."""
    run = load_run(folder)
    if run.classes != list(expected):
        raise UsageError(f"{folder / CLASSES} names {', '.join(run.classes)} but the hierarchical run expects "
                         f"{', '.join(expected)}; the folder mixes two runs (retrain it)")
    return run.model


def load_cascade(run_dir):
    """Open a hierarchical run folder: its mapping, classes and every sub-model, checked against each other."""
    run_dir = Path(run_dir)
    run = load_run(run_dir, model=False)
    tree = Tree.from_mapping(read_mapping(run_dir / HIERARCHY))
    if run.classes != list(tree.classes):
        raise UsageError(f"{run_dir / CLASSES} and {run_dir / HIERARCHY} name different labels; the run folder "
                         f"is damaged (retrain it)")
    fine = {parent: sub_model(run_dir / parent, tree.children[parent]) for parent in tree.modelled}
    return Cascade(tree, run.image_size, sub_model(run_dir / COARSE, tree.parents), fine, run)
