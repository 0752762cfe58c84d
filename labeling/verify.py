"""Open and fully decode image files in parallel, to find those that training could not read.

A file fails when Pillow cannot decode all of it (truncated, empty, not an image) or when its format,
detected from its content, is not one the trainer's decoder reads (common.schema.TRAINABLE_FORMATS).
"""
import os
from multiprocessing.pool import ThreadPool

from common.schema import TRAINABLE_FORMATS, too_large

PROGRESS_EVERY = 10_000  # images between progress reports


def decode_error(path):
    """None when the file decodes whole in a trainable format, else a short reason ('OSError: image file is ...')."""
    from PIL import Image

    large = too_large(path)
    if large:
        return f"too large to decode: {large}"
    try:
        with Image.open(path) as image:
            image.load()  # decodes every pixel: open() alone only reads the header
            kind = image.format
    except Exception as e:  # any failure to decode means the file is unusable for training
        return f"{type(e).__name__}: {e}"
    if kind not in TRAINABLE_FORMATS:
        return f"{kind} content, which training cannot decode (it reads {', '.join(sorted(TRAINABLE_FORMATS))})"
    return None


def find_undecodable(paths, workers=None, progress=None):
    """[(path, reason), ...] for the files in `paths` that do not decode; progress(done, total) now and then.

    Threads suffice: Pillow releases the GIL while it decodes, so they use every core.
    """
    workers = workers or os.cpu_count() or 1
    bad = []
    with ThreadPool(workers) as pool:
        for done, (path, reason) in enumerate(zip(paths, pool.imap(decode_error, paths, chunksize=64)), start=1):
            if reason is not None:
                bad.append((path, reason))
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, len(paths))
    return bad
