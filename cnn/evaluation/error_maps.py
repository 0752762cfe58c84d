"""worst_errors.png: the report's most confident mistakes, each with the heatmap of the class the model predicted
(where it found the evidence for its wrong answer), for report.html. A flat run's only: a cascade or an ensemble
has no single feature map to explain."""
from pathlib import Path

from cnn.data.loader import decode_and_resize
from cnn.evaluation.gradcam import heatmaps, overlay, save_panels
from cnn.evaluation.pictures import open_picture
from cnn.runfolder import ERROR_MAPS

SHOWN = 8  # mistakes drawn (the report lists up to cnn.evaluation.scoring.WORST)


def write_error_maps(out_dir, run, errors):
    """Draw up to SHOWN of `errors` (metrics' worst_errors) with run.model's heatmaps into OUT/worst_errors.png;
    an earlier picture is removed when there is nothing to draw (no mistakes, or none of their files readable)."""
    import numpy as np

    out = Path(out_dir) / ERROR_MAPS
    shown = []
    for error in errors[:SHOWN]:
        try:
            shown.append((error, open_picture(error["path"])))
        except (OSError, ValueError):  # moved or unreadable since scoring: draw the others
            continue
    if not shown:
        out.unlink(missing_ok=True)
        return None
    size = (run.image_size, run.image_size)
    images = np.stack([decode_and_resize(error["path"], size) for error, _ in shown])
    heat = heatmaps(run.model, images, [run.classes.index(error["predicted"]) for error, _ in shown])
    save_panels([(overlay(picture, h), f"{e['label']} as {e['predicted']} ({e['confidence']:.2f})", "tab:red")
                 for (e, picture), h in zip(shown, heat)], out)
    return out
