"""evaluate-cnn --shifts: the split scored again under changes of look a photo from elsewhere brings (closer or
farther framing, light, contrast, colour cast, greyscale, JPEG, blur), so the report says how much of the test
top-1 survives outside the dataset's own look.

Each shift changes the batches the loader yields (the images as the model takes them, at its input size) before
the run's own scorer (flat, cascade or ensemble, with --tta) predicts them; the "none" row is the report's own
scoring.
"""
import time
from pathlib import Path

import numpy as np

from cnn.runs.tta import Wrapped

FOLDER = "shifts"  # <report folder>/shifts/: shifts.csv, shifts.json, shifts.png
SCALE = 0.75  # closer: the central SCALE of the side, enlarged; farther: the photo shrunk to SCALE on its border colour


def _closer(image):
    from PIL import Image

    side = image.width
    margin = round(side * (1 - SCALE) / 2)
    return image.crop((margin, margin, side - margin, side - margin)).resize((side, side), Image.BILINEAR)


def _farther(image):
    from PIL import Image

    side, pixels = image.width, np.asarray(image)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).mean(axis=0)
    canvas = Image.new("RGB", (side, side), tuple(int(v) for v in border))
    small = round(side * SCALE)
    canvas.paste(image.resize((small, small), Image.BILINEAR), ((side - small) // 2,) * 2)
    return canvas


def _pixels(change):
    """A shift written as arithmetic on the float pixels, clipped back to 0..255."""
    from PIL import Image

    return lambda image: Image.fromarray(np.clip(change(np.asarray(image, np.float64)), 0, 255).astype(np.uint8))


def _jpeg(image):
    import io

    from PIL import Image

    encoded = io.BytesIO()
    image.save(encoded, format="JPEG", quality=15)
    return Image.open(encoded).convert("RGB")


def _blurred(image):
    from PIL import ImageFilter

    return image.filter(ImageFilter.GaussianBlur(radius=image.width / 128))  # 2 px at 256


SHIFTS = {  # name -> (what it changes, PIL RGB image -> PIL RGB image); "none" is the reference
    "none": ("the image as the model takes it", None),  # the split's own scoring, unchanged
    "closer": (f"the central {SCALE:.0%} of the side, enlarged (a closer shot)", _closer),
    "farther": (f"the photo shrunk to {SCALE:.0%} on its border colour (a wider shot)", _farther),
    "darker": ("brightness x 0.6", _pixels(lambda x: x * 0.6)),
    "low-contrast": ("contrast x 0.5 about the image's mean", _pixels(lambda x: (x - x.mean()) * 0.5 + x.mean())),
    "warm-cast": ("red x 1.15, blue x 0.8 (tungsten light)", _pixels(lambda x: x * np.array([1.15, 1.0, 0.8]))),
    "greyscale": ("luminance in every channel", lambda image: image.convert("L").convert("RGB")),
    "jpeg-15": ("saved at JPEG quality 15", _jpeg),
    "blurred": ("Gaussian blur of radius side/128 (2 px at 256)", _blurred),
}


def shift_image(pixels, name):
    """One image (H, W, 3; 0..255, any float or integer dtype) changed by shift `name` (not "none"), as float32."""
    from PIL import Image

    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    return np.asarray(SHIFTS[name][1](image), np.float32)


class Shifted(Wrapped):
    """Wraps anything with predict_on_batch (a Keras model, a Cascade, an ensemble, a TTA wrapper) so that it
    predicts on each batch changed by shift `name`."""

    def __init__(self, model, name):
        super().__init__(model)
        self.name = name

    def predict_on_batch(self, images):
        return self.model.predict_on_batch(np.stack([shift_image(image, self.name) for image in np.asarray(images)]))


def score_shifts(score, rows, reference, batch_size=32, skip_missing=False, log=print):
    """Score `rows` under every shift with `score` (an open run's scorer), the "none" row being `reference` (the
    metrics of the rows' own scoring); returns one record per shift: its name, what it changes, top-1, balanced
    accuracy, macro F1 and the images scored. Progress goes to `log`."""
    results, started = [], time.monotonic()
    for done, name in enumerate(SHIFTS):
        metrics = reference if name == "none" else score(rows, batch_size, skip_missing, "none",
                                                         shift=lambda model, name=name: Shifted(model, name))[2]
        results.append({"shift": name, "change": SHIFTS[name][0], "top1": metrics["top1"],
                        "balanced_accuracy": metrics["balanced_accuracy"], "macro_f1": metrics["macro_f1"],
                        "images": metrics["images"]})
        left = (time.monotonic() - started) / (done + 1) * (len(SHIFTS) - done - 1)
        log(f"shift {done + 1} of {len(SHIFTS)} ({name}): top-1 {metrics['top1']:.3f}; about {left:.0f} s left")
    return results


def shift_summary(results):
    """The reference's top-1, the mean over the shifts, and the drop between them (what metrics.json records)."""
    reference = next(r["top1"] for r in results if r["shift"] == "none")
    shifted = float(np.mean([r["top1"] for r in results if r["shift"] != "none"]))
    return {"reference_top1": reference, "mean_shifted_top1": shifted, "drop": reference - shifted,
            "worst": min((r for r in results if r["shift"] != "none"), key=lambda r: r["top1"])["shift"]}


def format_shifts(results):
    """The shifts as a table: top-1, balanced accuracy and macro F1 under each, and top-1's change from "none"."""
    from tabulate import tabulate

    reference = results[0]["top1"]
    return tabulate([[r["shift"], r["top1"], r["top1"] - reference, r["balanced_accuracy"], r["macro_f1"], r["change"]]
                     for r in results], headers=["shift", "top-1", "vs none", "balanced acc.", "macro F1", "change"],
                    floatfmt=("", ".3f", "+.3f", ".3f", ".3f", ""))


def write_shift_report(out, results):
    """shifts.csv, shifts.json (with the summary) and shifts.png (top-1 under each shift) in folder `out`."""
    import pandas as pd

    from cnn.evaluation.reports import new_figure, save_figure
    from common.atomic import write_csv, write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "shifts.csv", pd.DataFrame(results), index=False, float_format="%.4f")
    write_json(out / "shifts.json", {"summary": shift_summary(results), "shifts": results})
    fig = new_figure((6, 3.5))
    ax = fig.subplots()
    ax.barh([r["shift"] for r in results][::-1], [r["top1"] for r in results][::-1], color="tab:blue")
    ax.axvline(results[0]["top1"], color="black", lw=1, ls="--", label="none (the split as it is)")
    ax.set_xlabel("top-1 accuracy")
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, out / "shifts.png")
