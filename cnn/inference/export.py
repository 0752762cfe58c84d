"""export-model: a trained run as a deployable artefact (SavedModel, TFLite, ONNX), with its classes and metadata.

The exporters are TensorFlow's and Keras's own: Keras 3's `model.export(format="tf_saved_model")` and
`format="onnx"` (tf2onnx inside, the optional `onnx` extra), and TensorFlow's TFLite converter run on
that SavedModel (its path supports float16 and int8 quantisation). Every artefact takes raw 0-255 RGB
images of the run's size, as the run's model does (rescaling is inside), and returns class probabilities.
An export is a folder: the model file, `classes.json` and `export.json`, built under a temporary name
and renamed into place, so it appears complete or not at all.
"""
import datetime
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from cnn.runfolder import CLASSES, package_versions, save_classes
from cnn.runs.exports import METADATA
from cnn.runs.predictor import open_run
from common.atomic import write_json
from common.errors import UsageError

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZE = ("none", "float16", "int8")
MODEL_FILES = {"savedmodel": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
# How far an export's probabilities may stray from the Keras model's on the same images before it is refused.
TOLERANCE = {"none": 1e-3, "float16": 2e-2, "int8": 0.25}


def default_out(run_dir, fmt, quantize):
    """RUN/export/<format>[-<quantisation>]/."""
    return Path(run_dir) / "export" / (fmt if quantize == "none" else f"{fmt}-{quantize}")


def export_run(run_dir, *, fmt="savedmodel", quantize="none", out=None, calibration=100):
    """Export a run folder's model, or a --repeats folder's ensemble as one model (the mean of its members'
    calibrated probabilities); returns the export folder. Checks the request before any work."""
    check_request(fmt, quantize, calibration)
    out = Path(out) if out is not None else default_out(run_dir, fmt, quantize)
    if out.exists():
        raise UsageError(f"{out} exists; remove it or choose another -o")
    run = exportable_run(run_dir)
    staging = staging_folder(out)
    try:
        model = float32_copy(run.model)
        write_artefact(run, model, fmt, quantize, calibration, staging)
        save_classes(staging, run.classes)
        write_json(staging / METADATA, metadata(run, fmt, quantize, calibration))
        prove(staging, run, model, quantize)
        staging.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would hide it from a server's account
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def exportable_run(path):
    """The run to export: a flat run, or a --repeats folder's ensemble as one run; other kinds are refused."""
    opened = open_run(path)
    if opened.kind == "ensemble":
        return opened.loaded.as_run()
    if opened.kind != "flat":
        raise UsageError(f"{path} is a {opened.kind} folder; export-model takes a flat train-cnn run or a --repeats "
                         f"folder (export each sub-model of a hierarchical run on its own)")
    return opened.loaded


def staging_folder(out):
    """A new hidden folder beside `out` to build the export in; those a killed export left are removed first."""
    for stale in out.parent.glob(f".{out.name}.*"):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    except OSError as error:
        raise UsageError(f"cannot write the export in {out.parent} ({error.strerror}); choose another -o") from None


def current_umask():
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def prove(folder, run, model, quantize, images=4):
    """Load the written export as predict-cnn will and run a seeded batch through it and `model`, the float32 copy
    it was written from: an export whose input, output or probabilities disagree is refused, not shipped. The raw
    outputs are compared, before the run's temperature: dividing by a small T (0.05-0.15 for some runs) would
    magnify a float difference past any fixed tolerance, and the temperature is the same arithmetic on both."""
    import numpy as np

    if quantize == "int8":  # int8 ranges are calibrated on photos: noise would leave them
        batch = np.concatenate([image for [image] in calibration_images(run, images)()]).astype("float32")
    else:
        batch = np.random.default_rng(0).uniform(0, 255, (images, run.image_size, run.image_size, 3)).astype("float32")
    expected = np.asarray(model.predict_on_batch(batch), dtype=np.float64)
    try:
        got = np.asarray(open_run(folder).outputs(batch), dtype=np.float64)
    except Exception as error:  # noqa: BLE001 - whatever the runtime raises, the export is not usable
        raise UsageError(f"the written export does not run ({type(error).__name__}: "
                         f"{str(error).strip().splitlines()[0][:160] if str(error).strip() else ''}); not written")
    if got.shape != expected.shape or not np.abs(got - expected).max() <= TOLERANCE[quantize]:
        raise UsageError(f"the written export does not reproduce the model (outputs {got.shape}, largest "
                         f"difference {np.abs(got - expected).max() if got.shape == expected.shape else 'n/a'}); "
                         f"not written")


def check_request(fmt, quantize, calibration):
    """Refuse format/quantisation pairs no exporter offers, and a missing ONNX toolchain, in one line."""
    if fmt not in FORMATS or quantize not in QUANTIZE:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)} and --quantize one of {', '.join(QUANTIZE)}")
    if quantize != "none" and fmt != "tflite":
        raise UsageError(f"--quantize {quantize} is a TFLite conversion; use --format tflite (or --quantize none)")
    if calibration < 1:
        raise UsageError(f"--calibration {calibration}: must be 1 or more images")
    if fmt == "onnx" and not all(importlib.util.find_spec(name) for name in ("onnx", "tf2onnx")):
        raise UsageError("--format onnx needs the onnx and tf2onnx packages: pip install -e '.[onnx]'")


def float32_copy(model):
    """The model rebuilt with every mixed-precision layer in float32, with the same weights.

    A run trained in mixed bfloat16 computes in bfloat16, which the TFLite converter and ONNX cannot
    express; its variables are float32 already, so the float32 copy is the same model at full precision.
    """
    import keras

    def relax(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy" and node.get("config", {}).get("name", "").startswith("mixed"):
                return {**node, "config": {**node["config"], "name": "float32"}}
            return {key: relax(value) for key, value in node.items()}
        return [relax(value) for value in node] if isinstance(node, list) else node

    copy = keras.Model.from_config(relax(model.get_config()))
    copy.set_weights(model.get_weights())
    copy(keras.ops.zeros((1, *model.inputs[0].shape[1:])))  # exporters (ONNX) want a model that was called once
    return copy


def write_artefact(run, model, fmt, quantize, calibration, folder):
    """The model file(s) of one export into `folder`, from `model` (the float32 copy of the run's model)."""
    target = folder / MODEL_FILES[fmt]
    if fmt == "onnx":
        model.export(str(target), format="onnx", verbose=False)
        return
    saved = target if fmt == "savedmodel" else folder / ".saved_model"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    if fmt == "tflite":
        target.write_bytes(convert_tflite(saved, run, quantize, calibration))
        shutil.rmtree(saved)


def convert_tflite(saved_model, run, quantize, calibration):
    """TensorFlow's TFLite converter on the SavedModel; float16 weights, or int8 calibrated on training images."""
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration_images(run, calibration)
    return converter.convert()


def calibration_images(run, count):
    """A representative dataset: up to `count` training images of the run's labels CSV, one per call."""
    from cnn.data.labels_csv import run_labels
    from cnn.data.loader import decode_and_resize

    df, _ = run_labels(run.path)
    rows = df[df.split == "train"].sample(frac=1.0, random_state=0).head(count)

    def images():
        for path in rows["path"]:
            yield [decode_and_resize(path, (run.image_size, run.image_size))[None]]

    return images


def metadata(run, fmt, quantize, calibration):
    """export.json: what a deployment needs to feed the model, and where it came from."""
    return {"format": fmt, "quantize": quantize, "model_file": MODEL_FILES[fmt],
            "input": {"shape": [None, run.image_size, run.image_size, 3], "dtype": "float32",
                      "pixels": "RGB 0-255 (the model rescales inside)"},
            "output": "class probabilities, in the order of classes.json", "classes": run.classes,
            "temperature": run.temperature,  # predict-cnn takes the outputs to it: softmax(log p / T)
            "calibration_images": calibration if quantize == "int8" else None,
            "source_run": str(Path(run.source).resolve()), "classes_file": CLASSES,
            "ensemble": {"members": list(run.members), "n": len(run.members)} if getattr(run, "members", ()) else None,
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "versions": package_versions()}
