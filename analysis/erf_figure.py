"""Draw each measured layer's effective receptive field (the averaged |gradient| map) beside its theoretical
field: the heatmap, the theoretical square, and the squares holding 50% and 90% of the gradient mass."""
import math
from pathlib import Path

from analysis.receptive import unit_bounds
from common.atomic import atomic_path

PANEL_INCHES = 2.6
COLUMNS = 4
DPI = 100


def draw_effective_fields(nodes, fields, measured, out_path):
    """One panel per EffectiveField in `measured`, zoomed on its theoretical field; saved atomically to `out_path`
    (format from its suffix, PNG by default)."""
    from matplotlib.figure import Figure

    rows = math.ceil(len(measured) / COLUMNS)
    columns = min(len(measured), COLUMNS)
    # A bare Figure (no pyplot) renders off-screen and leaves a notebook's inline backend alone.
    fig = Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, erf in zip(axes, measured):
        _panel(ax, nodes[erf.index], fields[erf.index], erf)
    for ax in axes[len(measured):]:
        ax.set_axis_off()
    fig.suptitle("Effective receptive field (|gradient| of the centre unit; solid: theoretical field, "
                 "dashed: 50% and 90% of the mass)", fontsize=9)
    suffix = Path(out_path).suffix.lstrip(".").lower() or "png"
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=suffix, dpi=DPI)


def _panel(ax, node, field, erf):
    """The heatmap of a 2-D map (a 1-D map drawn as one row), zoomed around the theoretical square."""
    from matplotlib.patches import Rectangle

    gradient = erf.gradient if erf.gradient.ndim == 2 else erf.gradient[None, :]
    bounds = unit_bounds(field, erf.unit)
    (top, bottom), (left, right) = bounds if len(bounds) == 2 else ((0, 0), bounds[0])
    peak = gradient.max() or 1.0
    ax.imshow(gradient / peak, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                           edgecolor="deepskyblue", linewidth=1.5))
    flat = len(erf.centre) == 1  # a 1-D map: one row, and the squares become bands of that row
    centre = (0, erf.centre[0]) if flat else erf.centre
    for share, style in ((0.5, ":"), (0.9, "--")):
        r = erf.radii[share]
        ax.add_patch(Rectangle((centre[1] - r, -0.5 if flat else centre[0] - r), 2 * r, 1 if flat else 2 * r,
                               fill=False, edgecolor="white", linestyle=style, linewidth=1.2))
    margin = max(2, (right - left + 1) // 4)
    ax.set_xlim(left - margin - 0.5, right + margin + 0.5)
    ax.set_ylim((0.5, -0.5) if flat else (bottom + margin + 0.5, top - margin - 0.5))
    ax.set_xticks([])
    ax.set_yticks([])
    size = "x".join(f"{v:g}" for v in field.size)
    ax.set_title(f"{node.name}: field {size}\nr50 {erf.radii[0.5]:g}, r90 {erf.radii[0.9]:g} px", fontsize=8)
