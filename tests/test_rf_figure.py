"""The receptive-field figure: which squares it draws (worked out by hand), and the PNG/CSV it writes."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from analysis.rf_figure import draw_receptive_fields, field_squares
from common.errors import UsageError


def card_model(size):
    """The card's network (cnn.models.architectures' default architecture) for a size x size input, 6 classes."""
    from cnn.models.architectures import build_model

    return build_model("cnn", 6, (size, size, 3))


def square(centre, size):
    """Inclusive (first, last) pixels of a field of `size` centred at `centre`."""
    return centre - (size - 1) / 2, centre + (size - 1) / 2


# The card at 64x64 ('valid' convs 3x3, pools 2x2). Per layer: field size r, jump j, centre of the
# first unit c, output length n; the drawn unit is i = floor((31.5 - c)/j + 0.5) (nearest the image
# centre 31.5), centred at c + i*j.
#   conv1: r 3,  j 1, c 1,    n 62: i = floor(30.5 + 0.5) = 31 -> centre 32
#   pool1: r 4,  j 2, c 1.5,  n 31: i = floor(15 + 0.5) = 15    -> centre 31.5
#   conv2: r 8,  j 2, c 3.5,  n 29: i = floor(14 + 0.5) = 14    -> centre 31.5
#   pool2: r 10, j 4, c 4.5,  n 14: i = floor(6.75 + 0.5) = 7   -> centre 32.5
#   conv3: r 18, j 4, c 8.5,  n 12: i = floor(5.75 + 0.5) = 6   -> centre 32.5
#   pool3: r 22, j 8, c 10.5, n 6:  i = floor(2.625 + 0.5) = 3  -> centre 34.5
CARD_64 = [("Conv2D", 3, 1, 32), ("MaxPooling2D", 4, 2, 31.5), ("Conv2D", 8, 2, 31.5),
           ("MaxPooling2D", 10, 4, 32.5), ("Conv2D", 18, 4, 32.5), ("MaxPooling2D", 22, 8, 34.5)]


def test_card_model_squares_are_the_hand_computed_fields():
    rows, image_shape, global_from = field_squares(card_model(64))
    assert image_shape == (64, 64)
    assert [(r["kind"], r["size"], r["jump"]) for r in rows] == [(k, f"{s}x{s}", f"{j}x{j}") for k, s, j, _ in CARD_64]
    assert [(r["top"], r["bottom"]) for r in rows] == [square(c, s) for _, s, _, c in CARD_64]
    assert [(r["left"], r["right"]) for r in rows] == [square(c, s) for _, s, _, c in CARD_64]
    assert global_from is not None and "flatten" in global_from.lower()


def test_same_padding_strided_model():
    """9x9 input, conv 3x3 stride 2 'same' then conv 3x3 'same' (TensorFlow pads 'same' left by 1 here).

    conv a: out 5, left pad ((5-1)*2 + 3 - 9) // 2 = 1: c = 0 + (1 - 1)*1 = 0, r 3, j 2; i = floor(4/2 + .5) = 2
            -> centre 4, pixels 3..5
    conv b: left pad 1: c = 0 + (1 - 1)*2 = 0, r = 3 + 2*2 = 7, j 2; i = 2 -> centre 4, pixels 1..7
    """
    import keras

    inputs = keras.Input((9, 9, 1))
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="a")(inputs)
    x = keras.layers.Conv2D(2, 3, padding="same", name="b")(x)
    rows, _, global_from = field_squares(keras.Model(inputs, x))
    assert [(r["layer"], r["size"], r["jump"], r["top"], r["bottom"]) for r in rows] == [
        ("a", "3x3", "2x2", 3, 5), ("b", "7x7", "2x2", 1, 7)]
    assert global_from is None


def test_figure_png_and_csv(sample_tree, tmp_path):
    image = next((sample_tree / "img").rglob("*.jpg"))
    out = tmp_path / "rf.png"
    squares = draw_receptive_fields(card_model(64), image, out)
    assert list(squares["size"]) == [f"{s}x{s}" for _, s, _, _ in CARD_64]
    pd.testing.assert_frame_equal(pd.read_csv(out.with_suffix(".csv")), squares, check_dtype=False)
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size[0] > 500 and png.size[1] > 300
        pixels = np.asarray(png.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # the photo is there, not a blank canvas
    assert out.stat().st_size < 300 * 1024
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rf.csv", "rf.png"]  # no temp file left


def test_unreadable_image_is_a_user_error_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(UsageError, match=f"cannot read image {bad}"):
        draw_receptive_fields(card_model(32), bad, tmp_path / "rf.png")
    assert not (tmp_path / "rf.png").exists()


def test_model_without_spatial_input_is_a_user_error():
    import keras

    inputs = keras.Input((10,))
    with pytest.raises(UsageError, match="needs an image model"):
        field_squares(keras.Model(inputs, keras.layers.Dense(3)(inputs)))
