"""What the effective receptive field is averaged over: random weights on random pixels (Luo et al.'s setting),
or the model's own weights on real images from a labels CSV."""
import numpy as np

from common.errors import UsageError


def random_weights(model, seed):
    """A copy of `model` with fresh weights from its layers' own initialisers (seeded)."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def random_pixels(shape, n, seed):
    """`n` inputs of `shape` (no batch axis), uniform in 0..255 like the raw pixels the models take."""
    return np.random.default_rng(seed).uniform(0.0, 255.0, size=(n,) + tuple(shape)).astype("float32")


def csv_images(csv_path, shape, n, seed):
    """`n` images (a seeded sample of the CSV's rows, all if fewer) from the `path` column, resized to `shape`
    (height, width, channels) with bilinear filtering, as float32 pixels 0..255."""
    import pandas as pd

    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise UsageError(f"--images needs a model taking images (height, width, 1 or 3 channels), not {shape}")
    try:
        paths = pd.read_csv(csv_path)["path"]
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UsageError(f"--images {csv_path}: cannot read it as a CSV ({type(e).__name__})") from None
    except KeyError:
        raise UsageError(f"--images {csv_path}: no 'path' column (a labels CSV from make-labels has one)") from None
    if paths.empty:
        raise UsageError(f"--images {csv_path}: no rows")
    chosen = paths.sample(n=min(n, len(paths)), random_state=seed) if len(paths) > n else paths
    return np.stack([_load(path, shape) for path in chosen])


def _load(path, shape):
    """One image as a float32 array of `shape`: RGB for 3 channels, grey for 1."""
    from PIL import Image

    height, width, channels = shape
    try:
        with Image.open(path) as image:
            pixels = image.convert("RGB" if channels == 3 else "L").resize((width, height), Image.BILINEAR)
    except (OSError, ValueError) as e:
        raise UsageError(f"--images: cannot read image {path} ({type(e).__name__})") from None
    return np.asarray(pixels, dtype="float32").reshape(shape)
