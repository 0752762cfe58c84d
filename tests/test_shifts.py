"""evaluate-cnn --shifts: each shift is the stated change of the image the model takes, and the report holds one
row per shift, its "none" row the report's own top-1, with the summary computed from the rows."""
import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cnn.evaluation.shifts import SCALE, SHIFTS, Shifted, shift_image, shift_summary

SIZE = 64


@pytest.fixture(scope="module")
def base():
    """A 64 x 64 colour image with structure everywhere (gradients and a bright square), as the loader yields it."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    pixels = np.stack([x * 3.9, y * 3.5, 255 - x * 3.0], axis=-1)
    pixels[24:40, 24:40] = 250
    return pixels.astype(np.float32) + 0.3  # the loader's resize leaves fractions


def test_each_shift_is_the_stated_change(base):
    whole = np.rint(base)
    np.testing.assert_allclose(shift_image(base, "darker"), np.floor(whole * 0.6), atol=1)
    grey = shift_image(base, "greyscale")
    assert np.all(grey[..., 0] == grey[..., 1]) and np.all(grey[..., 1] == grey[..., 2])
    warm = shift_image(base, "warm-cast")
    np.testing.assert_allclose(warm[..., 2], np.floor(whole[..., 2] * 0.8), atol=1)
    np.testing.assert_allclose(warm[..., 0], np.floor(np.minimum(whole[..., 0] * 1.15, 255)), atol=1)
    assert shift_image(base, "low-contrast").std() == pytest.approx(whole.std() * 0.5, rel=0.02)
    farther = shift_image(base, "farther")
    border = np.concatenate([whole[0], whole[-1], whole[:, 0], whole[:, -1]]).mean(axis=0)
    np.testing.assert_allclose(farther[0, 0], border, atol=1)  # the margin is the border's mean colour
    np.testing.assert_allclose(farther[SIZE // 2, SIZE // 2], whole[SIZE // 2, SIZE // 2], atol=2)  # the centre stays
    margin = round(SIZE * (1 - SCALE) / 2)  # closer: the corners now show what was `margin` in from the edges
    np.testing.assert_allclose(shift_image(base, "closer")[0, 0], whole[margin, margin], atol=12)
    encoded = io.BytesIO()
    Image.fromarray(whole.astype(np.uint8)).save(encoded, format="JPEG", quality=15)
    np.testing.assert_array_equal(shift_image(base, "jpeg-15"), np.asarray(Image.open(encoded), np.float32))
    blurred = shift_image(base, "blurred")
    assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(whole, axis=1)).mean()


def test_the_wrapper_changes_the_batch_before_the_model_sees_it(base):
    class Echo:
        def predict_on_batch(self, images):
            return images

    batch = np.stack([base, base[::-1]])
    got = Shifted(Echo(), "greyscale").predict_on_batch(batch)
    np.testing.assert_array_equal(got, np.stack([shift_image(image, "greyscale") for image in batch]))


def test_evaluate_cnn_shifts_writes_a_row_per_shift(small_run, monkeypatch, capsys):
    from cnn.cli import evaluate_main

    run, table = small_run
    monkeypatch.chdir(run.parent)
    # a CSV of its own gives the report its own folder (eval-shifted-val/): other tests read the shared run's eval-val/
    shutil.copy(run.parent / "labels.csv", run.parent / "shifted.csv")
    assert evaluate_main([str(run), "--labels", "shifted.csv", "--split", "val", "--shifts"]) == 0
    out = run / "eval-shifted-val"
    rows = pd.read_csv(out / "shifts" / "shifts.csv")
    assert list(rows["shift"]) == list(SHIFTS) and (rows["images"] == (table.split == "val").sum()).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert rows["top1"][0] == pytest.approx(metrics["top1"], abs=1e-4)  # "none" is the report's own figure
    report = json.loads((out / "shifts" / "shifts.json").read_text())
    summary = shift_summary(rows.to_dict("records"))
    assert report["summary"]["worst"] == summary["worst"] == rows["shift"][1 + rows["top1"][1:].argmin()]
    assert report["summary"]["mean_shifted_top1"] == pytest.approx(rows["top1"][1:].mean(), abs=1e-4)
    assert metrics["shifts"]["drop"] == pytest.approx(rows["top1"][0] - rows["top1"][1:].mean(), abs=1e-4)
    assert (out / "shifts" / "shifts.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert evaluate_main([str(run), "--shifts", "--data", str(run)]) == 2  # shards cannot be shifted: one line
    assert "--shifts scores the image files; drop --data" in capsys.readouterr().err


def test_report_html_shows_the_shifts_and_a_collapse(tmp_path):
    from cnn.evaluation.html_report import write_html_report
    from cnn.evaluation.shifts import write_shift_report

    results = [{"shift": name, "change": SHIFTS[name][0], "top1": 0.8 - 0.01 * i, "balanced_accuracy": 0.7,
                "macro_f1": 0.7, "images": 10} for i, name in enumerate(SHIFTS)]
    write_shift_report(tmp_path / "shifts", results)
    metrics = {"top1": 0.8, "split": "test", "images": 10, "best_epoch": 9, "collapsed_at_epoch": 12,
               "shifts": {**shift_summary(results), "table": results}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    page = write_html_report(tmp_path).read_text()
    assert "Under shifts of look" in page and "the worst is <b>blurred</b>" in page
    assert page.count("<tr>") >= len(SHIFTS) + 1 and "Training collapsed at epoch 12" in page
