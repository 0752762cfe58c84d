"""Get the model to analyse: a .keras/.h5 file, a train-cnn run folder (its model.keras), or the default
train-cnn architecture built for a given input size and class count."""
from pathlib import Path

from analysis.graph import check_inputs
from cnn.runfolder import UsageError
from cnn.tfenv import quiet_tensorflow

RUN_MODEL = "model.keras"


def load_model(source=None, *, input_size=256, classes=46, arch="cnn"):
    """Return (model, description, run folder or None) for `source`: a model file, a run folder, or None."""
    if source is None:
        quiet_tensorflow()
        from cnn.models import build_model

        model = build_model(arch, classes, (input_size, input_size, 3))
        return model, f"default '{arch}' architecture, {classes} classes", None
    path = Path(source)
    if path.is_dir():
        if not (path / RUN_MODEL).is_file():
            raise UsageError(f"{path}: no {RUN_MODEL} in this folder; give a train-cnn run folder or a .keras/.h5 file")
        return _load_file(path / RUN_MODEL), str(path / RUN_MODEL), path
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder; give a .keras/.h5 model file or a train-cnn run folder")
    return _load_file(path), str(path), None


def _load_file(path):
    """Load a saved Keras model without its optimizer; anything that is not one is the user's error."""
    quiet_tensorflow()
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, KeyError... for files that are not models
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{path}: not a loadable Keras model ({reason[:200]}); "
                         "give a .keras or .h5 file saved by Keras") from None
    if not isinstance(model, keras.Model):
        raise UsageError(f"{path}: holds a {type(model).__name__}, not a Keras model")
    try:
        check_inputs(model)
    except UsageError as error:
        raise UsageError(f"{path}: {error}") from None
    return model
