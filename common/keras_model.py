"""Open a saved Keras model for any command, with one-line errors for files that are not models."""
from common.errors import UsageError
from common.tfenv import quiet_backend

# The model file of a train-cnn run folder: train-cnn writes it; evaluate, predict, show-batch, export and
# analyze-model open it. Shared here because analyze-model accepts run folders without depending on cnn.
RUN_MODEL_FILE = "model.keras"


def load_keras_model(path):
    """Load a .keras/.h5 model without its optimizer; anything that is not a single-input model is a UsageError."""
    quiet_backend()
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, KeyError, zipfile errors... for non-models
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{path}: not a loadable Keras model ({reason[:200]}); "
                         "give a .keras or .h5 file saved by Keras (a truncated file cannot be loaded)") from None
    if not isinstance(model, keras.Model):
        raise UsageError(f"{path}: holds a {type(model).__name__}, not a Keras model")
    return model
