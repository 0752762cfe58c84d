"""Decode checks on real files: good images of several kinds pass, broken ones are named with a reason."""
import io

import numpy as np
from PIL import Image

from labeling.verify import decode_error, find_undecodable


def jpeg_bytes(size=48):
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_files(root):
    """Good: RGB JPEG, PNG with alpha, grayscale, upper-case extension. Bad: truncated, empty, text."""
    data = jpeg_bytes()
    good, bad = [], []
    for name, content in [("rgb.jpg", data), ("UPPER.JPG", data)]:
        (root / name).write_bytes(content)
        good.append(str(root / name))
    Image.new("RGBA", (40, 30), (255, 0, 0, 128)).save(root / "alpha.png")
    Image.new("L", (40, 30), 77).save(root / "gray.jpg")
    good += [str(root / "alpha.png"), str(root / "gray.jpg")]
    for name, content in [("truncated.jpg", data[: len(data) // 2]), ("empty.jpg", b""),
                          ("text.png", b"not an image at all")]:
        (root / name).write_bytes(content)
        bad.append(str(root / name))
    return good, bad


def test_good_images_decode_and_broken_ones_do_not(tmp_path):
    good, bad = make_files(tmp_path)
    assert [decode_error(path) for path in good] == [None] * len(good)
    reasons = {path: decode_error(path) for path in bad}
    assert all(reasons.values())
    assert "truncated" in reasons[str(tmp_path / "truncated.jpg")].lower()


def test_parallel_check_returns_exactly_the_broken_files_in_order(tmp_path):
    good, bad = make_files(tmp_path)
    paths = sorted(good + bad)
    seen = []
    found = find_undecodable(paths, workers=3, progress=lambda done, total: seen.append((done, total)))
    assert [path for path, _ in found] == sorted(bad)
    assert seen == []  # fewer images than one progress step


def test_a_format_training_cannot_decode_is_dropped_whatever_its_name(tmp_path):
    """A TIFF named .jpg: Pillow reads it, TensorFlow's decode_image (the trainer's decoder) does not."""
    Image.new("RGB", (16, 16), (10, 200, 30)).save(tmp_path / "tiff.jpg", "TIFF")
    Image.new("RGB", (16, 16), (10, 200, 30)).save(tmp_path / "webp.jpg", "WEBP")
    assert "TIFF content, which training cannot decode" in decode_error(str(tmp_path / "tiff.jpg"))
    assert decode_error(str(tmp_path / "webp.jpg")) is None


def test_verify_and_the_trainer_agree_on_what_decodes(tmp_path):
    """Every Pillow format the verify step accepts decodes in the training loader, and TIFF fails in both."""
    from cnn.data.loader import decode_and_resize
    from common.schema import TRAINABLE_FORMATS

    for kind in sorted(TRAINABLE_FORMATS) + ["TIFF"]:
        path = tmp_path / f"image.{kind.lower()}"
        Image.new("RGB", (16, 16), (200, 10, 30)).save(path, kind)
        try:
            decode_and_resize(path, (8, 8))
            trainer_reads = True
        except Exception:  # noqa: BLE001 - TensorFlow raises InvalidArgumentError for unknown formats
            trainer_reads = False
        assert trainer_reads == (decode_error(str(path)) is None), kind
