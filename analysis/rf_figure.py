"""Draw each layer's receptive field as a square on a real input image, so a reader sees how much of a
garment one unit of each layer can see (the card's last convolution: 18x18 pixels of a 256x256 photo).

For every layer that changes the field (convolutions, pooling, padding), the unit drawn is the one whose
field centre is nearest the image centre; its square is the input pixels that unit sees (analysis.receptive).
"""
import math
from pathlib import Path

from analysis.graph import walk
from analysis.receptive import receptive_fields, unit_bounds
from common.atomic import atomic_path, write_csv
from common.errors import UsageError

FIGURE_INCHES = 6.0
DPI = 100


def central_unit(field, output_shape, image_shape):
    """Per axis, the index of the unit whose field centre (start + i*jump) is nearest the image centre."""
    return tuple(min(max(math.floor((((n_in - 1) / 2) - c) / j + 0.5), 0), n_out - 1)
                 for c, j, n_out, n_in in zip(field.start, field.jump, output_shape, image_shape))


def field_squares(model):
    """One row per layer that changes the receptive field, input to output, for a 2-D image model.

    Each row: layer, kind, size (rows x cols seen by one unit), jump (effective stride), and the drawn
    unit's square top/left/bottom/right (inclusive input pixels). Layers from Flatten or global pooling
    on, which see the whole input, are summed up in `global_from` (the first such layer, or None).
    """
    nodes = walk(model)
    image_shape = nodes[0].output_shape[:-1]
    if len(image_shape) != 2:
        raise UsageError(f"model {model.name!r} takes input {nodes[0].output_shape}; the receptive-field "
                         "figure needs an image model (height, width, channels)")
    rows, global_from, previous = [], None, None
    for node, field in zip(nodes, receptive_fields(nodes)):
        if field.is_global:
            global_from = global_from or node.name
            continue
        if (field.size, field.jump) == previous:
            continue
        previous = (field.size, field.jump)
        if not node.inputs:  # the input layer: each pixel sees itself
            continue
        (top, bottom), (left, right) = unit_bounds(field, central_unit(field, node.output_shape[:-1], image_shape))
        rows.append({"layer": node.name, "kind": node.kind, "size": "x".join(map(str, field.size)),
                     "jump": "x".join(map(str, field.jump)), "top": top, "left": left,
                     "bottom": bottom, "right": right})
    return rows, image_shape, global_from


def _draw_squares(ax, rows):
    """One coloured outline per row's square, labelled with its layer, field size and jump."""
    from matplotlib import patheffects
    from matplotlib.patches import Rectangle

    halo = [patheffects.withStroke(linewidth=3.2, foreground="white")]  # visible on any garment colour
    for i, row in enumerate(rows):
        ax.add_patch(Rectangle((row["left"] - 0.5, row["top"] - 0.5), row["right"] - row["left"] + 1,
                               row["bottom"] - row["top"] + 1, fill=False, linewidth=2.0, edgecolor=f"C{i % 10}",
                               path_effects=halo,
                               label=f"{row['layer']} ({row['kind']}): {row['size']}, jump {row['jump']}"))


def _zoom_window(rows, height, width):
    """(top, left, side) of a square crop around the largest field, 1.6 times its size, inside the image."""
    last = rows[-1]
    side = min(max(last["bottom"] - last["top"], last["right"] - last["left"]) * 1.6 + 2, height, width)
    top = min(max((last["top"] + last["bottom"]) / 2 - side / 2, -0.5), height - 0.5 - side)
    left = min(max((last["left"] + last["right"]) / 2 - side / 2, -0.5), width - 0.5 - side)
    return top, left, side


def draw_receptive_fields(model, image_path, out_png):
    """Draw `model`'s receptive-field squares on the image at `image_path` (resized to the model's input).

    Left: the whole image; right: zoomed on the squares. Writes OUT (PNG) and OUT with .csv (the squares,
    in input pixels); returns the squares as a DataFrame.
    """
    import pandas as pd
    from matplotlib.figure import Figure
    from PIL import Image

    rows, (height, width), global_from = field_squares(model)
    if not rows:
        raise UsageError(f"model {model.name!r} has no convolution or pooling layer: no local field to draw")
    try:
        with Image.open(image_path) as source:
            image = source.convert("RGB").resize((width, height), Image.BILINEAR)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read image {image_path} ({type(e).__name__})") from None
    # A bare Figure (no pyplot) renders off-screen and leaves a notebook's inline backend alone.
    fig = Figure(figsize=(FIGURE_INCHES * 1.5, FIGURE_INCHES * 0.9))
    whole, zoom = fig.subplots(1, 2)
    for ax in (whole, zoom):
        ax.imshow(image, extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        _draw_squares(ax, rows)
        ax.set_xticks([])
        ax.set_yticks([])
    top, left, side = _zoom_window(rows, height, width)
    zoom.set_xlim(left, left + side)
    zoom.set_ylim(top + side, top)
    whole.set_title(f"input {height}x{width} pixels", fontsize=9)
    zoom.set_title(f"zoomed to {side:.0f}x{side:.0f} pixels", fontsize=9)
    seen = f"; from {global_from} on, a unit sees the whole image" if global_from else ""
    fig.suptitle(f"What one unit of each layer sees{seen}", fontsize=10)
    fig.legend(*whole.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * math.ceil(len(rows) / 3), 1, 1))
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    squares = pd.DataFrame(rows)
    write_csv(Path(out_png).with_suffix(".csv"), squares, index=False)
    return squares
