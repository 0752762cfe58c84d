"""Image files as pictures to draw (not model inputs): RGB, shrunk to a drawable size."""

THUMBNAIL = 320  # big photos are shrunk to at most this many pixels a side before drawing (~2x a grid cell)


def open_picture(path):
    """The image file as an RGB PIL image (grayscale, palette and alpha converted), at most THUMBNAIL a side.

    Raises OSError or ValueError when Pillow cannot read it.
    """
    from PIL import Image

    with Image.open(path) as image:
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        return image.convert("RGB")
