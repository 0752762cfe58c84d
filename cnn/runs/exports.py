"""An export-model folder opened for prediction: its record (export.json) and its model file run by the format's
own runtime (TensorFlow's SavedModel loader, the TFLite interpreter, onnxruntime)."""
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from cnn.runfolder import checked_temperature, load_classes
from common.errors import UsageError

METADATA = "export.json"  # an export-model folder's record: format, model file, input (cnn.inference.export)


def is_export(path):
    """True for an export-model folder (it holds export.json)."""
    return (Path(path) / METADATA).is_file()


@dataclass(frozen=True)
class Export:
    """A loaded export: its classes, input size, format, the temperature its probabilities are taken to, and
    batch -> raw softmax outputs."""

    classes: list
    image_size: int
    format: str
    temperature: float
    predict_on_batch: object


def load_export(path):
    """Open an export-model folder: its record checked, its model file loaded by the format's runtime."""
    path = Path(path)
    meta = json.loads((path / METADATA).read_text(encoding="utf-8"))
    loader = {"savedmodel": savedmodel_fn, "tflite": tflite_fn, "onnx": onnx_fn}.get(meta.get("format"))
    if loader is None:
        raise UsageError(f"{path / METADATA}: unknown format {meta.get('format')!r}; re-export the run")
    return Export(load_classes(path), int(meta["input"]["shape"][1]), meta["format"],
                  checked_temperature(meta.get("temperature", 1.0), path / METADATA), loader(path / meta["model_file"]))


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
