"""predict-cnn: folders scanned, unreadable images warned about and skipped, output formats, true probabilities."""
import json
import shutil

import keras
import numpy as np
import pytest

from cnn.cli import predict_main
from cnn.data.loader import decode_and_resize
from cnn.runs.temperature import scaled
from cnn.inference.predict import find_images, predict_images


@pytest.fixture(scope="module")
def run(small_run):
    """The session's quickly trained run folder."""
    return small_run[0]


@pytest.fixture
def photo_dir(sample_tree, tmp_path):
    """A folder tree of 3 sample JPEGs (one in a sub-folder), a PNG copy, a corrupt .jpg and a text file."""
    sources = sorted((sample_tree / "img").rglob("*.jpg"))[:3]
    (tmp_path / "sub").mkdir()
    shutil.copy(sources[0], tmp_path / "a.jpg")
    shutil.copy(sources[1], tmp_path / "b.JPG")
    shutil.copy(sources[2], tmp_path / "sub" / "c.jpg")
    keras.utils.save_img(tmp_path / "d.png", keras.utils.load_img(sources[0]))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_find_images_scans_folders_recursively_for_image_suffixes(photo_dir):
    found = [p.relative_to(photo_dir).as_posix() for p in find_images([photo_dir])]
    assert found == ["a.jpg", "b.JPG", "broken.jpg", "d.png", "sub/c.jpg"]


@pytest.mark.train
def test_unreadable_image_is_warned_about_and_others_continue(run, photo_dir, capsys):
    assert predict_main([str(run), str(photo_dir), "--format", "json"]) == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [r["path"] for r in results] == [str(photo_dir / n) for n in ("a.jpg", "b.JPG", "d.png", "sub/c.jpg")]
    assert [line for line in captured.err.splitlines() if "warning" in line] == [
        f"predict-cnn: warning: skipped undecodable image {photo_dir / 'broken.jpg'} (1 skipped so far)"]  # the loader's
    assert all(len(r["predictions"]) == 3 for r in results)


@pytest.mark.train
def test_probabilities_are_the_models_softmax_at_its_temperature(run, photo_dir):
    classes = [json.loads((run / "classes.json").read_text())[str(i)] for i in range(6)]
    [(path, preds)] = predict_images(run, [photo_dir / "a.jpg"], top=10)  # top capped at the 6 classes
    model = keras.saving.load_model(run / "model.keras")
    raw = model.predict(decode_and_resize(photo_dir / "a.jpg", (32, 32))[None], verbose=0)
    temperature = json.loads((run / "calibration.json").read_text())["temperature"]
    expected = scaled(raw, temperature)[0]  # served at the run's calibrated temperature
    assert [name for name, _ in preds] == [classes[i] for i in np.argsort(-expected)]
    assert [p for _, p in preds] == pytest.approx(sorted(expected, reverse=True), abs=1e-6)
    assert sum(p for _, p in preds) == pytest.approx(1, abs=1e-5)


@pytest.mark.train
def test_table_output(run, photo_dir, capsys):
    assert predict_main([str(run), str(photo_dir / "a.jpg"), "--top", "2"]) == 0
    header, rule, row = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["image", "top1", "p1", "top2", "p2"]
    assert row.startswith(str(photo_dir / "a.jpg"))


@pytest.mark.train
def test_no_readable_image_exits_2(run, photo_dir, capsys):
    assert predict_main([str(run), str(photo_dir / "broken.jpg"), str(photo_dir / "notes.txt"),
                         str(photo_dir / "missing.jpg")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "predict-cnn: error: no readable image among the given paths"
    assert f"predict-cnn: warning: {photo_dir / 'missing.jpg'} not found, skipped" in err
