"""One image's fingerprint for the data audit: a hash of its decoded pixels (exact copies), a small grayscale
thumbnail (whose low DCT frequencies find near-copy candidates: cnn.audit.near), and what makes it odd.

A 64-bit perceptual hash (imagehash's pHash) was tried first and set aside: on the generated sample a 5%
crop moved it by up to 16 bits while distinct garments on the same plain background came within 2, so a
hash threshold either misses crops or pairs different garments; the thumbnail's DCT coefficients in a
KD-tree find the candidates, and an aligned pixel comparison decides.
"""
import hashlib
from dataclasses import dataclass

import numpy as np

THUMB = 32  # the confirming thumbnail's side
TINY = 64  # pixels: an image whose shorter side is below this is "tiny"
EXTREME_ASPECT = 3.0  # longer side over shorter side
BLANK_STD = 4.0  # grayscale standard deviation (0-255) below which an image is "near-blank"


@dataclass
class Fingerprint:
    """What the audit knows of one image file (None fields: it could not be read)."""

    exact: str = None  # sha256 of the decoded RGB pixels and their shape
    thumb: np.ndarray = None  # THUMB x THUMB grayscale, float32, zero mean and unit norm
    width: int = 0
    height: int = 0
    grayscale: bool = False
    blank: bool = False
    error: str = None


def fingerprint(path):
    """The Fingerprint of one image file; a file Pillow cannot decode gets `error` instead."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            rgb = image.convert("RGB")
    except Exception as e:  # noqa: BLE001 - any failure to decode: reported as an unreadable image
        return Fingerprint(error=f"{type(e).__name__}: {e}")
    pixels = np.asarray(rgb)
    gray = rgb.convert("L")
    thumb = np.asarray(gray.resize((THUMB, THUMB), Image.BILINEAR), np.float32)
    thumb = thumb - thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return Fingerprint(
        exact=hashlib.sha256(pixels.tobytes() + str(pixels.shape).encode()).hexdigest(),
        thumb=thumb / norm if norm else thumb,
        width=rgb.width, height=rgb.height,
        grayscale=bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()),
        blank=float(np.asarray(gray, np.float32).std()) < BLANK_STD)


def oddities(fp):
    """The odd-image kinds a Fingerprint shows: tiny, extreme aspect ratio, near-blank, grayscale, unreadable."""
    if fp.error:
        return ["unreadable"]
    kinds = []
    if min(fp.width, fp.height) < TINY:
        kinds.append("tiny")
    if max(fp.width, fp.height) / max(1, min(fp.width, fp.height)) > EXTREME_ASPECT:
        kinds.append("extreme_aspect")
    if fp.blank:
        kinds.append("near_blank")
    if fp.grayscale:
        kinds.append("grayscale")
    return kinds
