"""One loader of anything that predicts: open_run(path) -> Predictor for a flat run, a hierarchical run, a
--repeats ensemble or an export-model folder. What kind of run a folder holds is decided here and nowhere else;
evaluate-cnn, predict-cnn, show-batch, export-model, --teacher and the server all open runs through it."""
from dataclasses import dataclass
from pathlib import Path

from cnn.data.hierarchy import is_hierarchical
from cnn.runfolder import load_run
from cnn.runs.cascade import load_cascade
from cnn.runs.ensemble import is_ensemble, load_ensemble
from cnn.runs.exports import is_export, load_export
from cnn.runs.temperature import at_temperature
from cnn.runs.tta import TTA, with_tta
from common.errors import UsageError

KINDS = ("flat", "hierarchical", "ensemble", "export")
# The kinds with no single Keras model to take gradients of (Grad-CAM: predict-cnn --cam, serve-cnn's page), and
# what to give instead.
UNEXPLAINED = {"hierarchical": "a hierarchical run (give one of its sub-model folders)",
               "ensemble": "a --repeats ensemble (give one of its seed-<s>/ runs)",
               "export": "an export (give the run folder it was exported from)"}


def kind_of(path):
    """What a folder holds: "ensemble" (a --repeats parent with finished runs), "hierarchical", "export" (an
    export-model folder) or "flat" (anything else: load_run checks it)."""
    if is_ensemble(path):
        return "ensemble"
    if is_hierarchical(path):
        return "hierarchical"
    return "export" if is_export(path) else "flat"


@dataclass
class Predictor:
    """A run ready to predict: 0-255 float images [B, S, S, 3] -> calibrated class probabilities.

    `outputs` gives the model's raw outputs (a flat run's or export's softmax, a cascade's models side by side,
    an ensemble's mean of calibrated probabilities); `probabilities` turns (flip-averaged) outputs into the
    calibrated class probabilities. Scoring reads both; everything else calls predict_on_batch.
    """

    path: Path
    kind: str  # one of KINDS
    classes: list
    image_size: int
    outputs: object  # images -> raw outputs, see above
    probabilities: object  # raw outputs -> calibrated probabilities
    loaded: object  # the opened thing: a flat run's Run (with its model), an Ensemble, a Cascade or an Export
    record: object = None  # cnn.runfolder.Run of the run's top folder (config, labels CSV); None for an export
    temperature: float = 1.0  # the calibrated temperature (1 for a cascade, an ensemble's members carry their own)
    tta: str = "none"  # "flip": outputs are averaged with the mirrored image's before `probabilities`

    def viewed(self, shift=None):
        """Something with predict_on_batch giving the outputs averaged over the TTA views, of images changed
        first by `shift` (evaluate-cnn --shifts) when given."""
        return with_tta(_Outputs(self.outputs), self.tta, shift)

    def predict_on_batch(self, images):
        """Calibrated class probabilities, float64 [B, classes]."""
        return self.probabilities(self.viewed().predict_on_batch(images))

    @property
    def explained(self):
        """The flat run whose Keras model Grad-CAM can explain; None for the other kinds."""
        return self.loaded if self.kind == "flat" else None


@dataclass(frozen=True)
class _Outputs:
    """A function seen as a model (predict_on_batch), for cnn.runs.tta's wrappers."""

    predict_on_batch: object


def open_run(path, tta="none"):
    """Open a run folder, a --repeats folder or an export once, its model(s) loaded and checked against the
    folder's record before any image is read; with tta "flip" it predicts the mean over each image and its mirror."""
    if tta not in TTA:
        raise UsageError(f"tta {tta!r} is not one of {', '.join(TTA)}")
    path = Path(path)
    kind = kind_of(path)
    if kind == "flat":
        return from_run(load_run(path), tta)
    return {"hierarchical": _cascade, "ensemble": _ensemble, "export": _export}[kind](path, tta)


def from_run(run, tta="none"):
    """The Predictor of a flat run already loaded (cnn.runfolder.Run with its model), at its temperature now."""
    temperature = run.temperature
    return Predictor(run.path, "flat", run.classes, run.image_size, run.model.predict_on_batch,
                     lambda out: at_temperature(out, temperature), run, run, temperature, tta)


def _cascade(path, tta):
    cascade = load_cascade(path)
    return Predictor(path, "hierarchical", list(cascade.tree.classes), cascade.image_size, cascade.predict_on_batch,
                     cascade.soft, cascade, cascade.run, tta=tta)


def _ensemble(path, tta):
    ensemble = load_ensemble(path)
    return Predictor(path, "ensemble", ensemble.classes, ensemble.image_size, ensemble.predict_on_batch,
                     lambda out: at_temperature(out, 1.0), ensemble, ensemble.run, tta=tta)


def _export(path, tta):
    export = load_export(path)
    return Predictor(path, "export", export.classes, export.image_size, export.predict_on_batch,
                     lambda out: at_temperature(out, export.temperature), export, temperature=export.temperature,
                     tta=tta)
