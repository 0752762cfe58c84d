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

# Image formats the trainer's decoder (tf.io.decode_image) reads, as Pillow names them. The format is
# detected from the file's content, whatever its extension: a TIFF named .jpg is not trainable.
TRAINABLE_FORMATS = frozenset({"JPEG", "PNG", "GIF", "BMP", "WEBP"})
