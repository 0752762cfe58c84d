"""Redraw the README's sample-data figures (preview, receptive fields, effective receptive fields, heatmaps of
mistakes); run from the repository root:

    python notebooks/figures/make_figures.py [errors_cam]

preview.png: show-batch --per-class 3 --split train; receptive_fields.png: the default train-cnn model's
receptive fields on a test Tee; effective_rf.png: `analyze-model --effective-rf --plot` on the untrained
default model; errors_cam.png: `show-batch --errors RUN --cam -n 4` on make demo's run (trained here, about
2 minutes). The photo grids are reduced to a 256-colour palette to stay small. With `errors_cam`, only that one.
"""
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from analysis.cli import main as analyze_model  # noqa: E402
from analysis.loading import load_model  # noqa: E402
from analysis.rf_figure import draw_receptive_fields  # noqa: E402
from cnn.data.labels_csv import read_labels  # noqa: E402
from cnn.inference.show_batch import show_batch  # noqa: E402
from cnn.training.train import train  # noqa: E402
from data.make_sample import generate  # noqa: E402
from labeling.cli import main as make_labels  # noqa: E402


def to_palette(png, out):
    """Save `png` as a 256-colour PNG at `out` (dithered: photos keep their look at a third of the size)."""
    with Image.open(png) as image:
        image.convert("RGB").quantize(256).save(out, optimize=True)


def effective_rf_figure():
    """The card's untrained model's effective receptive fields, drawn by analyze-model itself."""
    if analyze_model(["--effective-rf", "--format", "csv", "--plot", str(HERE / "effective_rf.png")]) != 0:
        sys.exit("analyze-model --effective-rf failed")


def errors_cam_figure():
    """make demo's run (train-cnn --epochs 12 --image-size 128), then its 4 worst test predictions with heatmaps."""
    train(out="runs/demo", labels="labels.csv", epochs=12, image_size=128)
    show_batch(out_png="errors_cam.png", n=4, cols=4, errors_run="runs/demo", cam=True)
    to_palette("errors_cam.png", HERE / "errors_cam.png")


def sample_labels():
    """The sample tree and its labels.csv in the current folder."""
    generate(Path("deepfashion"), per_class=100, seed=0)
    if make_labels(["deepfashion", "-o", "labels.csv"]) != 0:
        sys.exit("make-labels failed")


def sample_figures():
    """preview.png and receptive_fields.png, from the sample tree in the current folder."""
    show_batch("labels.csv", out_png="preview.png", per_class=3, split="train", seed=0)
    to_palette("preview.png", HERE / "preview.png")
    labels = read_labels("labels.csv")
    tee = labels.loc[(labels.split == "test") & (labels.label == "Tee"), "path"].iloc[0]
    draw_receptive_fields(load_model(arch="cnn")[0], tee, HERE / "receptive_fields.png")
    os.remove(HERE / "receptive_fields.csv")  # the README shows the figure; the table is analyze-model's


def main(only=None):
    everything = only != "errors_cam"
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)
        sample_labels()
        errors_cam_figure()
        if everything:
            sample_figures()
        os.chdir(HERE)
    if everything:
        effective_rf_figure()
    names = ("preview.png", "receptive_fields.png", "effective_rf.png", "errors_cam.png") if everything else (
        "errors_cam.png",)
    for name in names:
        print(f"{HERE / name}: {os.path.getsize(HERE / name) / 1024:.0f} KiB")


if __name__ == "__main__":
    main(*sys.argv[1:2])
