"""show-batch: the grid's count, titles and layout, its PNG and CSV, its errors, and a run's worst predictions."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from common.errors import UsageError
from conftest import TINY
from cnn.evaluation.pictures import CELL_INCHES, DPI, TITLE_LINE_INCHES
from cnn.inference.show_batch import show_batch

CATEGORIES = ["Dress", "Hoodie", "Jeans", "Shorts", "Skirt", "Tee"]


def labels_from_partition(tree):
    """A labels CSV frame built straight from the tree's Eval partition file (label = folder-name suffix)."""
    lines = (tree / "Eval" / "list_eval_partition.txt").read_text().splitlines()[2:]
    rows = [line.split() for line in lines]
    return pd.DataFrame({"path": [str(tree / name) for name, _ in rows],
                         "label": [name.split("/")[1].rsplit("_", 1)[1] for name, _ in rows],
                         "group": [name.split("/")[1] for name, _ in rows],
                         "split": [split for _, split in rows]})


@pytest.fixture(scope="module")
def labels(sample_tree, tmp_path_factory):
    """(labels.csv path, its frame): the sample tree's images with absolute paths."""
    df = labels_from_partition(sample_tree)
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    df.to_csv(path, index=False)
    return path, df


def png_size(cols, rows, title_lines=2):
    """The PNG's pixel size from the figure's geometry: cells CELL_INCHES wide, + the title's lines tall."""
    return round(cols * CELL_INCHES * DPI), round(rows * (CELL_INCHES + 0.05 + TITLE_LINE_INCHES * title_lines) * DPI)


def test_grid_draws_n_images_titled_with_their_label_and_split(labels, tmp_path):
    csv, df = labels
    out = tmp_path / "grid.png"
    drawn = show_batch(csv, out_png=out, n=10, seed=1)
    assert len(drawn) == 10 and drawn["path"].is_unique
    truth = df.set_index("path")
    assert list(drawn["title"]) == [f"{truth.label[p]}\n{truth.split[p]}" for p in drawn["path"]]
    assert list(drawn["cell"]) == list(range(10))
    width, height = Image.open(out).size
    assert (width, height) == pytest.approx(png_size(4, 3), abs=1)  # ceil(sqrt(10)) = 4 columns, 3 rows
    assert pd.read_csv(out.with_suffix(".csv"))["path"].tolist() == drawn["path"].tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.csv", "grid.png"]  # no temp file left


def test_the_drawn_cells_show_the_images(labels, tmp_path):
    """The grid's first cell holds the first drawn image: its mean colour matches the source's."""
    csv, _ = labels
    out = tmp_path / "one.png"
    drawn = show_batch(csv, out_png=out, n=1)
    grid = np.asarray(Image.open(out).convert("RGB"), dtype=float)
    source = np.asarray(Image.open(drawn["path"][0]).convert("RGB"), dtype=float)
    h, w, _ = grid.shape
    centre = grid[h // 2 - 20:h // 2 + 20, w // 2 - 20:w // 2 + 20]
    src_centre = source[64 - 18:64 + 18, 64 - 18:64 + 18]
    assert np.abs(centre.mean(axis=(0, 1)) - src_centre.mean(axis=(0, 1))).max() < 25


def test_per_class_draws_k_of_each_label_one_row_per_label(labels, tmp_path):
    csv, df = labels
    drawn = show_batch(csv, out_png=tmp_path / "pc.png", per_class=3, split="train", seed=0)
    assert drawn["label"].value_counts().to_dict() == {c: 3 for c in CATEGORIES}
    assert set(drawn["split"]) == {"train"}
    assert list(drawn["label"]) == [c for c in CATEGORIES for _ in range(3)]  # labels sorted, grouped
    assert list(drawn["cell"]) == list(range(18))
    assert Image.open(tmp_path / "pc.png").size == pytest.approx(png_size(3, 6), abs=1)
    truth = df.set_index("path")
    assert list(drawn["title"]) == [f"{truth.label[p]}\ntrain" for p in drawn["path"]]


def test_per_class_with_a_small_class_leaves_its_row_short(labels, tmp_path):
    csv, df = labels
    small = pd.concat([df[df.label != "Tee"], df[df.label == "Tee"].head(2)])
    small.to_csv(tmp_path / "small.csv", index=False)
    drawn = show_batch(tmp_path / "small.csv", out_png=tmp_path / "pc.png", per_class=4)
    assert drawn["label"].value_counts().to_dict() == {**{c: 4 for c in CATEGORIES[:-1]}, "Tee": 2}
    assert list(drawn["cell"][-2:]) == [20, 21]  # Tee is the 6th row: cells 20..23, two filled


def test_same_seed_same_images_other_seed_others(labels, tmp_path):
    csv, _ = labels
    first = show_batch(csv, out_png=tmp_path / "a.png", n=8, seed=3)["path"].tolist()
    again = show_batch(csv, out_png=tmp_path / "b.png", n=8, seed=3)["path"].tolist()
    other = show_batch(csv, out_png=tmp_path / "c.png", n=8, seed=4)["path"].tolist()
    assert first == again and first != other


def test_split_filters_rows_and_n_is_capped_by_what_exists(labels, tmp_path):
    csv, df = labels
    n_val = int((df.split == "val").sum())
    drawn = show_batch(csv, out_png=tmp_path / "v.png", n=n_val + 50, split="val")
    assert len(drawn) == n_val and set(drawn["split"]) == {"val"}


def test_unreadable_image_is_skipped_with_a_warning(labels, tmp_path, capsys):
    csv, df = labels
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    bad_row = {"path": str(broken), "label": "Tee", "group": "x", "split": "train"}
    rows = pd.concat([df.head(3), pd.DataFrame([bad_row])])
    rows.to_csv(tmp_path / "l.csv", index=False)
    drawn = show_batch(tmp_path / "l.csv", out_png=tmp_path / "g.png", n=4)
    assert len(drawn) == 3 and str(broken) not in set(drawn["path"])
    assert f"cannot read {broken}" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [
    (dict(per_class=0), "--per-class must be at least 1, not 0"),
    (dict(n=0), "-n must be at least 1, not 0"),
    (dict(cols=0), "--cols must be at least 1, not 0"),
    (dict(split="nosuch"), "no rows in split 'nosuch'"),
    (dict(errors_run="somerun", per_class=2), "cannot be combined with --per-class"),
])
def test_bad_options_are_user_errors_and_write_nothing(labels, tmp_path, kwargs, message):
    csv, _ = labels
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        show_batch(csv, out_png=tmp_path / "x.png", **kwargs)
    assert not any(tmp_path.iterdir())


def test_missing_csv_names_the_file(tmp_path):
    with pytest.raises(UsageError, match=f"labels CSV {tmp_path / 'none.csv'} not found"):
        show_batch(tmp_path / "none.csv", out_png=tmp_path / "x.png")


def test_no_readable_image_is_a_user_error_and_writes_nothing(tmp_path):
    pd.DataFrame([{"path": str(tmp_path / "gone.jpg"), "label": "Tee", "split": "train"}]).to_csv(
        tmp_path / "l.csv", index=False)
    with pytest.raises(UsageError, match="none of the 1 chosen images could be read"):
        show_batch(tmp_path / "l.csv", out_png=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def show_batch_command():
    """The installed show-batch console script (beside this interpreter)."""
    script = Path(sys.executable).with_name("show-batch")
    return str(script) if script.exists() else shutil.which("show-batch")


def test_cli_writes_the_grid_and_reports_user_errors_with_exit_2(labels, tmp_path):
    csv, _ = labels
    command = show_batch_command()
    done = subprocess.run([command, "--labels", str(csv), "--per-class", "2", "-o", str(tmp_path / "g.png")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(tmp_path / "g.csv")) == 12
    bad = subprocess.run([command, "--labels", str(tmp_path / "none.csv"), "-o", str(tmp_path / "h.png")],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [f"show-batch: error: labels CSV {tmp_path / 'none.csv'} not found; "
                                               "create it with make-labels or give its path"]
    assert not (tmp_path / "h.png").exists()


@pytest.fixture(scope="module")
def tiny_run(labels, tmp_path_factory):
    """A real train-cnn run: one epoch at 32 px on the sample tree (fast, so it makes mistakes to show)."""
    from cnn.training.train import train

    csv, _ = labels
    run = tmp_path_factory.mktemp("runs") / "tiny"
    cwd = os.getcwd()
    os.chdir(run.parent)
    try:
        train(out=run, labels=str(csv), batch_size=32, **TINY)
    finally:
        os.chdir(cwd)
    return run


def true_class_probabilities(run, rows):
    """Independently of show-batch: the run's model over the batch loader, probability of each row's true class."""
    import keras

    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe
    from cnn.runs.temperature import scaled
    from cnn.runfolder import load_classes, load_config, load_run

    classes = load_classes(run)
    size = load_config(run)["options"]["image_size"]
    model = keras.saving.load_model(run / "model.keras")
    dataset = flow_from_dataframe(rows, classes=classes, target_size=(size, size),
                                  batching=Batching(batch_size=16)).dataset
    probs = np.concatenate([np.asarray(model.predict_on_batch(x)) for x, _ in dataset])
    probs = scaled(probs, load_run(run, model=False).temperature)  # served at the run's calibrated temperature
    return dict(zip(rows["path"], probs[np.arange(len(rows)), [classes.index(c) for c in rows["label"]]]))


@pytest.mark.train
def test_errors_shows_the_lowest_true_class_probabilities_first(labels, tiny_run, tmp_path):
    _, df = labels
    test_rows = df[df.split == "test"].reset_index(drop=True)
    expected = true_class_probabilities(tiny_run, test_rows)
    drawn = show_batch(out_png=tmp_path / "errors.png", n=9, errors_run=tiny_run)
    assert len(drawn) == 9 and set(drawn["split"]) == {"test"}
    np.testing.assert_allclose(drawn["p_true"], [expected[p] for p in drawn["path"]], atol=1e-4)
    assert list(drawn["p_true"]) == sorted(drawn["p_true"])
    assert drawn["p_true"].max() <= sorted(expected.values())[8] + 1e-4  # the 9 lowest of the whole test split
    assert all(drawn["confidence"] >= drawn["p_true"] - 1e-9)
    assert list(drawn["title"]) == [f"true: {t}\npred: {p} {c:.2f}\np(true) {pt:.2f}" for t, p, c, pt in
                                    zip(drawn.label, drawn.predicted, drawn.confidence, drawn.p_true)]
    assert Image.open(tmp_path / "errors.png").size == pytest.approx(png_size(3, 3, title_lines=3), abs=1)
