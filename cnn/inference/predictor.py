"""Run a trained model for prediction from a run folder or from any export-model artefact, behind one interface."""
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from cnn.data.hierarchy import is_hierarchical
from cnn.evaluation.ensemble import is_ensemble, load_ensemble
from cnn.evaluation.tta import flip_mean
from cnn.runfolder import load_classes, load_run
from common.errors import UsageError

METADATA = "export.json"  # an export-model folder's record: format, model file, input (cnn.inference.export)


@dataclass
class Predictor:
    """What prediction needs: the class names, the input size, and batch -> probabilities."""

    classes: list
    image_size: int
    predict: object  # float32 [B, S, S, 3] numpy batch of 0-255 pixels -> [B, classes] probabilities
    source: str  # "keras", "cascade" (a hierarchical run), or the export's format
    run: object = None  # the run folder's Run (with its Keras model) when `source` is "keras"
    temperature: float = 1.0  # the calibrated temperature `predict`'s probabilities are at (1: raw softmax)


def load_predictor(path, tta="none"):
    """A Predictor for a train-cnn run folder (a hierarchical one predicts by the soft cascade) or an
    export-model folder (SavedModel, TFLite or ONNX); with tta "flip" the model's outputs are averaged with the
    mirrored image's (then taken to the calibrated temperature, as evaluate-cnn --tta flip does)."""
    path = Path(path)
    views = flip_mean if tta == "flip" else (lambda predict: predict)
    if is_ensemble(path):  # a --repeats parent: its members' calibrated probabilities, averaged
        ensemble = load_ensemble(path)
        return Predictor(ensemble.classes, ensemble.image_size, views(ensemble.predict_on_batch), "ensemble")
    if is_hierarchical(path):
        from cnn.evaluation.hierarchical_run import load_cascade

        cascade = load_cascade(path)
        return Predictor(list(cascade.tree.classes), cascade.image_size, views(cascade.probabilities), "cascade")
    if not (path / METADATA).is_file():
        run = load_run(path)
        return Predictor(run.classes, run.image_size,
                         at_temperature(views(run.model.predict_on_batch), run.temperature), "keras", run,
                         run.temperature)
    meta = json.loads((path / METADATA).read_text(encoding="utf-8"))
    classes, size = load_classes(path), int(meta["input"]["shape"][1])
    loader = {"savedmodel": savedmodel_fn, "tflite": tflite_fn, "onnx": onnx_fn}.get(meta.get("format"))
    if loader is None:
        raise UsageError(f"{path / METADATA}: unknown format {meta.get('format')!r}; re-export the run")
    temperature = float(meta.get("temperature", 1.0))
    return Predictor(classes, size, at_temperature(views(loader(path / meta["model_file"])), temperature),
                     meta["format"], temperature=temperature)


def at_temperature(predict, temperature):
    """`predict` with its probabilities taken to the run's calibrated temperature (itself at T = 1)."""
    if temperature == 1.0:
        return predict
    import numpy as np

    from cnn.evaluation.calibration import scaled

    return lambda batch: scaled(np.asarray(predict(batch), dtype=np.float64), temperature)


def savedmodel_fn(path):
    """The SavedModel's `serve` signature, as a numpy function."""
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    loaded = tf.saved_model.load(str(path))
    return lambda batch: loaded.serve(tf.constant(batch, tf.float32)).numpy()


def tflite_fn(path):
    """TensorFlow's TFLite interpreter, resized to each batch (XNNPACK on CPU)."""
    import numpy as np

    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to the ai_edge_litert package
        warnings.simplefilter("ignore")
        # Every core: the interpreter's default is one thread, which made float32 TFLite 2.4x slower than Keras.
        interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    shape = [None]  # the batch shape the tensors are allocated for: reallocated only when it changes

    def predict(batch):
        batch = np.asarray(batch, np.float32)
        if shape[0] != batch.shape:
            interpreter.resize_tensor_input(source["index"], batch.shape)
            interpreter.allocate_tensors()
            shape[0] = batch.shape
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"]).copy()

    return predict


def onnx_fn(path):
    """onnxruntime on the ONNX file (the optional `onnx` extra)."""
    import numpy as np

    try:
        import onnxruntime
    except ImportError:
        raise UsageError("an ONNX export needs onnxruntime: pip install -e '.[onnx]'") from None
    settings = onnxruntime.SessionOptions()
    settings.intra_op_num_threads = os.cpu_count() or 1
    session = onnxruntime.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: np.asarray(batch, np.float32)})[0]
