"""The loader without TensorFlow: cnn.data.loader's batches from Pillow and numpy, as a Keras PyDataset.

`flow_from_dataframe` hands over to it when TensorFlow is not installed (Keras's JAX backend on a machine
that has JAX alone, such as a borrowed GPU machine); with TensorFlow installed, tf.data stays the loader on
every backend. The same contract: any format Pillow reads, its first frame, as RGB; resized bilinearly with
half-pixel centres and no antialiasing (tf.image.resize's sampling, by Pillow's affine transform: within a level
of TensorFlow's rounding); undecodable or too-large files skipped into the SkipLog; float32 pixels in 0..255
with one-hot labels. Augmentation is `flip` and `crop` (the default recipe's, with the tf.data loader's
distributions and crop_and_resize's sampling), drawn from numpy generators keyed by (seed, epoch, batch):
reproducible, not the same draws as TensorFlow's. The other augmentations, --mix and file caches need
TensorFlow's loader. Keras's worker threads decode batches in parallel (Pillow releases the GIL while it
decodes).
"""
import numpy as np

from common.errors import UsageError
from common.schema import MAX_PIXELS

SUPPORTED_AUGMENT = ("flip", "crop")
NEEDS_TENSORFLOW = "needs TensorFlow's tf.data loader, and TensorFlow is not installed"


def affine(image, size, scale, offset):
    """Pillow's bilinear sampling of a PIL image onto `size` (height, width): output pixel (row, col) reads input
    point (offset + scale x index) per axis, clamped at the edges, without antialiasing; uint8 (H, W, 3)."""
    from PIL import Image

    data = (scale[1], 0, offset[1] + 0.5 - 0.5 * scale[1], 0, scale[0], offset[0] + 0.5 - 0.5 * scale[0])
    return np.asarray(image.transform(size[::-1], Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR))


def resize(image, size):
    """A PIL image resized to `size` (height, width) as tf.image.resize(method="bilinear") samples it (half-pixel
    centres, no antialiasing), within one level of its rounding: uint8 (H, W, 3)."""
    scale = (image.height / size[0], image.width / size[1])
    return affine(image, size, scale, (0.5 * scale[0] - 0.5, 0.5 * scale[1] - 0.5))


def decode(path, size):
    """The image file at `path` as uint8 (height, width, 3) at `size`, or None when it cannot be decoded or
    declares more than MAX_PIXELS (checked from the header, before decoding)."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            if opened.size[0] * opened.size[1] > MAX_PIXELS:
                return None
            return resize(opened.convert("RGB"), size)  # the first frame; grey, RGBA, CMYK, palette -> RGB
    except Exception:  # noqa: BLE001 - Pillow raises many types for unreadable files; all mean "skip it"
        return None


def crop_and_flip(image, spec, draws):
    """The tf.data loader's `crop` (a square of side 1 - u x crop placed uniformly, resized back with
    crop_and_resize's corner-aligned sampling) and `flip` (mirrored when the last draw is below 1/2) of a uint8
    (H, W, 3) image, from 4 uniform draws, as one bilinear resampling."""
    from PIL import Image

    height, width = image.shape[:2]
    side = 1.0 - draws[0] * spec.get("crop", 0.0)
    top, left = (1.0 - side) * draws[1] * (height - 1), (1.0 - side) * draws[2] * (width - 1)
    step = (side * (height - 1) / max(height - 1, 1), side * (width - 1) / max(width - 1, 1))
    if spec.get("flip") and draws[3] < 0.5:  # the columns read right to left
        left, step = left + step[1] * (width - 1), (step[0], -step[1])
    return affine(Image.fromarray(image), (height, width), step, (top, left))


def check_supported(augment, cache, mix):
    """A UsageError naming the first option this loader cannot honour."""
    unsupported = sorted(key for key, value in (augment or {}).items() if value and key not in SUPPORTED_AUGMENT)
    if unsupported:
        raise UsageError(f"--augment {','.join(unsupported)} {NEEDS_TENSORFLOW}; without it the loader does "
                         f"{' and '.join(SUPPORTED_AUGMENT)} (pip install tensorflow-cpu for the others)")
    if mix:
        raise UsageError(f"--mix {mix} {NEEDS_TENSORFLOW}; drop --mix or pip install tensorflow-cpu")
    if cache not in (None, "memory"):
        raise UsageError(f"--cache with a file PATH {NEEDS_TENSORFLOW}; use --cache memory or none")
