"""Get the model to analyse: a .keras/.h5 file, a train-cnn run folder (its model file), or the default
train-cnn architecture built for a given input size and class count."""
from pathlib import Path

from analysis.graph import check_inputs
from common.errors import UsageError
from common.keras_model import RUN_MODEL_FILE, load_keras_model
from common.tfenv import quiet_tensorflow


def load_model(source=None, *, input_size=256, classes=46, arch=None):
    """Return (model, description, run folder or None) for `source`: a model file, a run folder, or None."""
    if source is None:
        quiet_tensorflow()
        from cnn.models.architectures import DEFAULT_ARCH, build_model

        arch = arch or DEFAULT_ARCH
        model = build_model(arch, classes, (input_size, input_size, 3))
        return model, f"train-cnn's '{arch}' architecture, {classes} classes", None
    path = Path(source)
    if path.is_dir():
        if not (path / RUN_MODEL_FILE).is_file():
            raise UsageError(f"{path}: no {RUN_MODEL_FILE} in this folder; give a train-cnn run folder or a "
                             f".keras/.h5 file")
        return _load_file(path / RUN_MODEL_FILE), str(path / RUN_MODEL_FILE), path
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder; give a .keras/.h5 model file or a train-cnn run folder")
    return _load_file(path), str(path), None


def _load_file(path):
    """Load a saved Keras model and check it has one fixed-shape input."""
    model = load_keras_model(path)
    try:
        check_inputs(model)
    except UsageError as error:
        raise UsageError(f"{path}: {error}") from None
    return model
