"""evaluate-cnn --shifts: each shift is the stated change of the image the model takes, and the report holds one
row per shift with the summary computed from them."""
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cnn.data.numpy_loader import decode
from cnn.evaluation.shifts import SCALE, SHIFTS, shift_summary, write_shifted

SIZE = 64


@pytest.fixture
def photo(tmp_path):
    """A 100 x 80 colour photo with structure everywhere (gradients and a bright square), as one labelled row."""
    y, x = np.mgrid[0:80, 0:100]
    pixels = np.stack([x * 2.5, y * 3.0, 255 - x * 2.0], axis=-1)
    pixels[30:50, 40:60] = 250
    path = tmp_path / "photo.png"
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return pd.DataFrame({"path": [str(path)], "label": ["a"], "split": ["test"]})


def shifted(photo, name, tmp_path):
    folder = tmp_path / name
    folder.mkdir()
    rows = write_shifted(photo, SIZE, name, folder)
    return np.asarray(Image.open(rows.path.iloc[0]).convert("RGB"), np.float64), rows.path.iloc[0]


def test_each_shift_is_the_stated_change(photo, tmp_path):
    base = decode(photo.path.iloc[0], (SIZE, SIZE)).astype(np.float64)
    none, _ = shifted(photo, "none", tmp_path)
    np.testing.assert_array_equal(none, base)  # the reference is the image as the loader resizes it
    np.testing.assert_allclose(shifted(photo, "darker", tmp_path)[0], np.floor(base * 0.6), atol=1)
    grey = shifted(photo, "greyscale", tmp_path)[0]
    assert np.all(grey[..., 0] == grey[..., 1]) and np.all(grey[..., 1] == grey[..., 2])
    warm = shifted(photo, "warm-cast", tmp_path)[0]
    np.testing.assert_allclose(warm[..., 2], np.floor(base[..., 2] * 0.8), atol=1)
    np.testing.assert_allclose(warm[..., 0], np.floor(np.minimum(base[..., 0] * 1.15, 255)), atol=1)
    flat = shifted(photo, "low-contrast", tmp_path)[0]
    assert flat.std() == pytest.approx(base.std() * 0.5, rel=0.02)
    farther = shifted(photo, "farther", tmp_path)[0]
    border = np.concatenate([base[0], base[-1], base[:, 0], base[:, -1]]).mean(axis=0)
    np.testing.assert_allclose(farther[0, 0], border, atol=1)  # the margin is the border's mean colour
    small = round(SIZE * SCALE)
    assert np.abs(farther[(SIZE - small) // 2 + small // 2, SIZE // 2] - base[SIZE // 2, SIZE // 2]).max() < 40
    closer = shifted(photo, "closer", tmp_path)[0]
    # the corners now show what was SCALE/2 in from the edges
    margin = round(SIZE * (1 - SCALE) / 2)
    np.testing.assert_allclose(closer[0, 0], base[margin, margin], atol=12)
    jpeg, path = shifted(photo, "jpeg-15", tmp_path)
    assert Image.open(path).format == "JPEG" and 0 < np.abs(jpeg - base).mean() < 30
    blurred = shifted(photo, "blurred", tmp_path)[0]
    assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(base, axis=1)).mean()


def test_an_undecodable_image_is_left_out(photo, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    rows = pd.concat([photo, photo.assign(path=str(bad))], ignore_index=True)
    (tmp_path / "out").mkdir()
    assert list(write_shifted(rows, SIZE, "darker", tmp_path / "out").index) == [0]


def test_evaluate_cnn_shifts_writes_a_row_per_shift(small_run, monkeypatch, capsys):
    from cnn.cli import evaluate_main

    run, table = small_run
    monkeypatch.chdir(run.parent)
    assert evaluate_main([str(run), "--split", "val", "--shifts"]) == 0
    out = run / "eval-val"
    rows = pd.read_csv(out / "shifts" / "shifts.csv")
    assert list(rows["shift"]) == list(SHIFTS) and (rows["images"] == (table.split == "val").sum()).all()
    report = json.loads((out / "shifts" / "shifts.json").read_text())
    summary = shift_summary(rows.to_dict("records"))
    assert report["summary"] == pytest.approx({k: v for k, v in summary.items() if k != "worst"} | {
        "worst": summary["worst"]}, abs=1e-4)
    assert report["summary"]["mean_shifted_top1"] == pytest.approx(rows["top1"][1:].mean(), abs=1e-4)
    assert json.loads((out / "metrics.json").read_text())["shifts"]["reference_top1"] == pytest.approx(
        rows["top1"][0], abs=1e-4)
    assert (out / "shifts" / "shifts.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert evaluate_main([str(run), "--shifts", "--data", str(run)]) == 2  # shards cannot be shifted: one line
    assert "--shifts scores the image files; drop --data" in capsys.readouterr().err
