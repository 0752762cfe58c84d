"""The tf.data loader on real image files written with PIL: shapes, pixels, labels, channels, bad files, options."""
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cnn.data.augment import DEFAULT_AUGMENT, parse_augment
from cnn.data.batching import Batching
from cnn.data.loader import MissingFilesError, check_files, decode_and_resize, flow_from_dataframe

SIZE = (16, 16)


def write(path, colour=(200, 100, 50), mode="RGB", fmt="PNG", size=(40, 30)):
    """A solid-colour image converted to `mode` and saved as `fmt`; returns its path as str."""
    image = Image.new("RGB", size, colour)
    # an adaptive palette holds the colour itself (the default web palette would dither it)
    image = image.convert("P", palette=Image.Palette.ADAPTIVE) if mode == "P" else image.convert(mode)
    image.save(path, fmt)
    return str(path)


def frame(paths, labels):
    return pd.DataFrame({"path": [str(p) for p in paths], "label": labels})


def collect(ds):
    """All (images, one-hot) of a dataset as two numpy arrays."""
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds.dataset])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture
def five(tmp_path):
    """Five PNGs, distinct colours, labels c/a/b/a/c."""
    colours = [(10 * i, 255 - 10 * i, 7 * i) for i in range(5)]
    paths = [write(tmp_path / f"{i}.png", c) for i, c in enumerate(colours)]
    return frame(paths, ["c", "a", "b", "a", "c"]), colours


def test_batches_have_the_promised_shapes_dtypes_and_exact_pixels(five):
    df, colours = five
    ds = flow_from_dataframe(df, target_size=SIZE, batching=Batching(batch_size=2))
    batches = [(x.numpy(), y.numpy()) for x, y in ds.dataset]
    assert [x.shape for x, _ in batches] == [(2, 16, 16, 3), (2, 16, 16, 3), (1, 16, 16, 3)]
    assert all(x.dtype == np.float32 and y.dtype == np.float32 for x, y in batches)
    images = np.concatenate([x for x, _ in batches])
    # a solid colour survives decode + bilinear resize exactly, in 0..255 (no rescaling in the loader)
    expected = np.broadcast_to(np.array(colours, np.float32)[:, None, None, :], images.shape)
    np.testing.assert_array_equal(images, expected)


def test_non_square_target_size_and_drop_remainder(five):
    df, _ = five
    x, _ = collect(flow_from_dataframe(df, target_size=(12, 20), batching=Batching(batch_size=2, drop_remainder=True)))
    assert x.shape == (4, 12, 20, 3)


def test_resize_keeps_the_layout_of_the_picture(tmp_path):
    half = np.zeros((32, 32, 3), np.uint8)
    half[:, :16] = (255, 0, 0)
    half[:, 16:] = (0, 0, 255)
    Image.fromarray(half).save(tmp_path / "half.png")
    x, _ = collect(flow_from_dataframe(frame([tmp_path / "half.png"], ["a"]), target_size=(8, 8)))
    np.testing.assert_array_equal(x[0, :, :4], np.broadcast_to([255, 0, 0], (8, 4, 3)))
    np.testing.assert_array_equal(x[0, :, 4:], np.broadcast_to([0, 0, 255], (8, 4, 3)))


def test_labels_default_to_sorted_order_and_are_one_hot(five):
    df, _ = five
    ds = flow_from_dataframe(df, target_size=SIZE, batching=Batching(batch_size=4))
    assert ds.class_names == ["a", "b", "c"]
    _, y = collect(ds)
    assert y.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]]


def test_given_classes_fix_the_order_and_width(five):
    df, _ = five
    ds = flow_from_dataframe(df, classes=["c", "b", "a", "z"], target_size=SIZE)
    assert ds.class_names == ["c", "b", "a", "z"]
    _, y = collect(ds)
    assert y.argmax(axis=1).tolist() == [0, 2, 1, 2, 0]
    assert y.shape == (5, 4) and y.sum(axis=1).tolist() == [1] * 5


def test_a_label_outside_the_given_classes_is_named(five):
    df, _ = five
    with pytest.raises(ValueError, match="labels not among the classes: c"):
        flow_from_dataframe(df, classes=["a", "b"], target_size=SIZE)


def test_without_labels_the_dataset_yields_images_only(five):
    df, colours = five
    ds = flow_from_dataframe(df, y_col=None, target_size=SIZE, batching=Batching(batch_size=8))
    (images,) = list(ds.dataset)
    assert images.shape == (5, 16, 16, 3) and ds.class_names is None
    np.testing.assert_array_equal(images.numpy()[:, 0, 0], colours)


@pytest.mark.parametrize("mode, fmt, exact", [
    ("L", "PNG", True), ("RGBA", "PNG", True), ("LA", "PNG", True), ("P", "PNG", True),
    ("RGB", "BMP", True), ("L", "BMP", True), ("RGB", "GIF", True),
    ("RGB", "JPEG", False), ("L", "JPEG", False), ("CMYK", "JPEG", False),
])
def test_every_kind_of_image_comes_out_rgb(tmp_path, mode, fmt, exact):
    path = write(tmp_path / f"img.{fmt.lower()}", colour=(180, 60, 220), mode=mode, fmt=fmt)
    with Image.open(path) as im:
        assert im.mode == mode or fmt == "GIF"
        reference = np.asarray(im.convert("RGB"), np.float32)[0, 0]  # PIL's own decoding, the reference
    x, _ = collect(flow_from_dataframe(frame([path], ["a"]), target_size=SIZE))
    assert x.shape == (1, 16, 16, 3)
    pixels = x[0].reshape(-1, 3)
    # PNG/BMP/GIF decode losslessly; JPEG decoders may differ by a rounding step in the IDCT
    tolerance = 0 if exact else 3
    assert np.abs(pixels - reference).max() <= tolerance


def test_missing_files_are_reported_with_count_and_paths(five, tmp_path):
    df, _ = five
    gone = [str(tmp_path / f"gone{i}.jpg") for i in range(7)]
    bad = pd.concat([df, frame(gone, ["a"] * 7)], ignore_index=True)
    with pytest.raises(MissingFilesError) as err:
        flow_from_dataframe(bad, target_size=SIZE)
    message = str(err.value)
    assert "7 of 12 image files are missing" in message
    assert gone[0] in message and gone[4] in message and gone[5] not in message
    assert "--skip-missing" in message


def test_skip_missing_drops_the_rows_and_warns(five, tmp_path, capsys):
    df, colours = five
    bad = pd.concat([frame([tmp_path / "gone.png"], ["a"]), df], ignore_index=True)
    kept = check_files(bad, skip_missing=True)
    assert kept["path"].tolist() == df["path"].tolist()
    assert "dropped 1 of 6 rows" in capsys.readouterr().err
    x, _ = collect(flow_from_dataframe(bad, target_size=SIZE, skip_missing=True))
    np.testing.assert_array_equal(x[:, 0, 0], colours)


def test_undecodable_files_are_skipped_and_counted_not_fatal(five, tmp_path, capsys):
    df, colours = five
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(jpeg, "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(jpeg.getvalue()[:300])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("this is not an image\n")
    corrupt = [str(tmp_path / n) for n in ("truncated.jpg", "empty.jpg", "text.jpg")]
    mixed = pd.concat([frame(corrupt[:1], ["a"]), df.iloc[:2], frame(corrupt[1:], ["b", "c"]), df.iloc[2:]],
                      ignore_index=True)
    ds = flow_from_dataframe(mixed, target_size=SIZE, batching=Batching(batch_size=2))
    for _ in range(2):  # a second epoch re-meets them without counting them twice
        x, y = collect(ds)
        np.testing.assert_array_equal(x[:, 0, 0], colours)
        assert y.argmax(axis=1).tolist() == [2, 0, 1, 0, 2]
    assert ds.skipped.count == 3 and sorted(ds.skipped.paths) == sorted(corrupt)
    err = capsys.readouterr().err
    assert all(f"skipped undecodable image {p}" in err for p in corrupt)


def test_decode_and_resize_matches_the_loader(five):
    df, _ = five
    x, _ = collect(flow_from_dataframe(df, target_size=SIZE))
    single = decode_and_resize(df.path[3], SIZE)
    assert single.dtype == np.float32
    np.testing.assert_array_equal(single, x[3])


def test_parse_augment():
    assert parse_augment("default") == DEFAULT_AUGMENT == {"flip": True, "rotation": 0.1, "zoom": 0.2,
                                                           "shear": 0.2, "shift": 0.1}
    assert parse_augment("flip, rotation=0.05,shift=0.1") == {"flip": True, "rotation": 0.05, "shift": 0.1}
    with pytest.raises(ValueError, match="unknown augmentation blur"):
        parse_augment("flip,blur=2")
    with pytest.raises(ValueError, match="zoom=x"):
        parse_augment("zoom=x")
    with pytest.raises(ValueError, match="out of range"):
        parse_augment("rotation=1.5")


@pytest.fixture
def textured(tmp_path):
    """Eight asymmetric noise images, so any flip/rotation/shift changes pixels."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(tmp_path / f"n{i}.png")
        paths.append(tmp_path / f"n{i}.png")
    return frame(paths, list("abababab"))


def test_augmentation_changes_training_batches_only(textured):
    plain, y_plain = collect(flow_from_dataframe(textured, target_size=SIZE, batching=Batching(batch_size=4, seed=3)))
    again, _ = collect(flow_from_dataframe(textured, target_size=SIZE, batching=Batching(batch_size=4, seed=3)))
    np.testing.assert_array_equal(plain, again)  # no augment: the deterministic pipeline, image for image
    augmented, y_aug = collect(flow_from_dataframe(textured, target_size=SIZE,
                                                   batching=Batching(batch_size=4, seed=3, augment="default")))
    np.testing.assert_array_equal(y_aug, y_plain)
    assert augmented.dtype == np.float32 and augmented.shape == plain.shape
    assert all(not np.allclose(a, p) for a, p in zip(augmented, plain))
    assert augmented.min() >= 0 and augmented.max() <= 255.001
    repeat, _ = collect(flow_from_dataframe(textured, target_size=SIZE,
                                            batching=Batching(batch_size=4, seed=3, augment="default")))
    np.testing.assert_array_equal(repeat, augmented)  # the seed makes the random transforms repeatable


def test_flip_only_mirrors_some_images_and_leaves_the_rest(textured):
    plain, _ = collect(flow_from_dataframe(textured, target_size=SIZE, batching=Batching(batch_size=8)))
    flipped, _ = collect(flow_from_dataframe(textured, target_size=SIZE,
                                             batching=Batching(batch_size=8, seed=1, augment={"flip": True})))
    mirrored = [np.array_equal(f, p[:, ::-1]) for f, p in zip(flipped, plain)]
    untouched = [np.array_equal(f, p) for f, p in zip(flipped, plain)]
    assert all(m or u for m, u in zip(mirrored, untouched))  # each image is itself or its mirror
    assert any(mirrored) and any(untouched)  # with 8 fair coin flips, both happen for this seed


@pytest.mark.parametrize("cache", ["memory", "file"])
def test_cache_gives_the_same_data(five, tmp_path, cache):
    df, _ = five
    reference = collect(flow_from_dataframe(df, target_size=SIZE, batching=Batching(batch_size=2)))
    where = "memory" if cache == "memory" else str(tmp_path / "cache" / "train")
    (tmp_path / "cache").mkdir()
    ds = flow_from_dataframe(df, target_size=SIZE, batching=Batching(batch_size=2, cache=where))
    for _ in range(2):  # the first epoch fills the cache, the second reads it
        for got, want in zip(collect(ds), reference):
            np.testing.assert_array_equal(got, want)
    if cache == "file":
        assert any(p.name.startswith("train") for p in (tmp_path / "cache").iterdir())


@pytest.mark.parametrize("cache", [None, "memory"])
def test_shuffle_is_seeded_and_keeps_every_row(textured, cache):
    plain, y = collect(flow_from_dataframe(textured, target_size=SIZE, batching=Batching(batch_size=3)))
    shuffled = Batching(batch_size=3, shuffle=True, seed=7, cache=cache)
    runs = [collect(flow_from_dataframe(textured, target_size=SIZE, batching=shuffled)) for _ in range(2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])  # same seed, same order
    order = [next(j for j in range(8) if np.array_equal(img, plain[j])) for img in runs[0][0]]
    assert sorted(order) == list(range(8)) and order != list(range(8))
    np.testing.assert_array_equal(runs[0][1], y[order])  # labels travel with their images
