"""The labels CSV contract that make-labels writes and every other command reads."""

COLUMNS = ("path", "label", "group", "split")  # what make-labels writes, in this order
REQUIRED_COLUMNS = ("path", "label", "split")  # what a reader needs
SPLITS = ("train", "val", "test")
CATEGORY_TYPE = "category_type"  # optional column: upper, lower or full (DeepFashion's body type of the label)
# Image files by extension (lower case, no dot): what make-labels lists and predict-cnn picks up in folders.
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "bmp", "gif", "webp"})


def is_image_name(name):
    """True when a file name ends in one of IMAGE_EXTENSIONS (any case)."""
    return "." in name and name.rsplit(".", 1)[1].lower() in IMAGE_EXTENSIONS

# The most pixels (width x height) any decoder of the project accepts in one image: Pillow's decompression-bomb
# limit (2 x its MAX_IMAGE_PIXELS), so make-labels --verify, training, packing and prediction agree. A 20000x20000
# PNG (400M pixels, 1.2 GB decoded) is refused by all of them.
MAX_PIXELS = 178_956_970


def too_large(path):
    """A reason when the image file's header declares more than MAX_PIXELS, else None (Pillow reads the header)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        return f"more than {MAX_PIXELS:,} pixels"
    except Exception:  # noqa: BLE001 - not readable at all: another reason, reported by the caller
        return None
    return f"{width}x{height} pixels, more than {MAX_PIXELS:,}" if width * height > MAX_PIXELS else None


# Image formats the trainer's decoder (tf.io.decode_image) reads, as Pillow names them. The format is
# detected from the file's content, whatever its extension: a TIFF named .jpg is not trainable.
TRAINABLE_FORMATS = frozenset({"JPEG", "PNG", "GIF", "BMP", "WEBP"})
