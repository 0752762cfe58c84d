"""Image files as pictures to draw (not model inputs): RGB, shrunk to a drawable size; a titled grid of them
(show-batch, audit-data's and audit-labels' contact sheets)."""
from pathlib import Path

from common.atomic import atomic_path
from common.console import writer

warn = writer("show-batch", "warning: ")  # the running command's name replaces show-batch (common.console)

THUMBNAIL = 320  # big photos are shrunk to at most this many pixels a side before drawing (~2x a grid cell)
CELL_INCHES = 1.7  # each image's square in the figure
DPI = 90  # 1.7 in x 90 dpi ~ 150 px per image: the sample's 128 px images stay sharp, the PNG stays small
TITLE_LINE_INCHES = 0.15  # height kept above each image per line of its title (8 pt text)


def open_picture(path):
    """The image file as an RGB PIL image (grayscale, palette and alpha converted), at most THUMBNAIL a side.

    Raises OSError or ValueError when Pillow cannot read it.
    """
    from PIL import Image

    with Image.open(path) as image:
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        return image.convert("RGB")


def open_image(path):
    """The image as an RGB picture, or None (with a warning) when unreadable."""
    try:
        return open_picture(path)
    except (OSError, ValueError) as e:
        warn(f"cannot read {path} ({type(e).__name__}), skipped")
        return None


def draw_grid(images, names, colours, cells, cols, out_png):
    """Draw each image in its cell of a `cols`-wide grid, titled; save the PNG atomically.

    A bare matplotlib Figure (no pyplot) renders off-screen without touching the caller's backend,
    so it also works inside a notebook whose inline plots must keep working.
    """
    from matplotlib.figure import Figure

    rows = max(cells) // cols + 1
    title_inches = 0.05 + TITLE_LINE_INCHES * max(name.count("\n") + 1 for name in names)
    fig = Figure(figsize=(cols * CELL_INCHES, rows * (CELL_INCHES + title_inches)))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for cell, image, name, colour in zip(cells, images, names, colours):
        ax = axes.flat[cell]
        ax.imshow(image)
        ax.set_title(name, fontsize=8, color=colour, parse_math=False)  # a '$' in a name is text
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def draw_sheet(cells, cols, out_png):
    """A contact sheet of (cell, image or None, title) in black titles, the unreadable images left out; with nothing
    to draw, a sheet an earlier run left at `out_png` is removed, so it never stands for this one."""
    shown = [(c, i, n) for c, i, n in cells if i is not None]
    if not shown:
        Path(out_png).unlink(missing_ok=True)
        return
    draw_grid([i for _, i, _ in shown], [n for _, _, n in shown], ["black"] * len(shown), [c for c, _, _ in shown],
              cols, out_png)
