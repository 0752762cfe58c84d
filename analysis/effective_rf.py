"""Effective receptive field (Luo, Li, Urtasun and Zemel, "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks", NeurIPS 2016): where, inside its theoretical field, a unit's input really matters.

For each spatial layer, the gradient of its centre unit (index n//2 per axis, summed over channels) with respect
to the input, in absolute value, summed over the input channels and averaged over the inputs, is the ERF map.
Its radius for a share q of the mass is the half-side of the smallest square, centred on the unit's field
centre, that holds q of the map's total: ceil to whole pixels, so the whole theoretical field (size r) has
radius r/2, and a ratio radius / (r/2) of 1 means "as wide as the theory allows".
"""
from dataclasses import dataclass

import numpy as np

from analysis.graph import run
from analysis.receptive import unit_bounds
from common.errors import UsageError
from common.tfenv import quiet_tensorflow

SHARES = (0.5, 0.9)
CHUNK = 16  # inputs per gradient pass: bounds memory on large inputs


@dataclass(frozen=True)
class ErfOptions:
    """What `analyze-model --effective-rf` measures: layer names (None: every field-changing layer), how many
    inputs, a labels CSV of images (None: random weights and pixels), the seed, and a figure to draw."""

    layers: tuple = None
    n: int = 16
    images: str = None
    seed: int = 0
    plot: str = None


@dataclass(frozen=True)
class EffectiveField:
    """One layer's ERF: the averaged |gradient| map over the input pixels, the unit measured, and its radii."""

    index: int
    gradient: np.ndarray
    unit: tuple
    centre: tuple
    radii: dict
    half_size: float
    outside: float


def spatial_nodes(nodes, fields, names=None):
    """Indices of the nodes to measure: those named, or by default every layer whose theoretical field differs
    from each of its inputs' (convolutions, pooling, padding). Only layers with a local spatial field."""
    measurable = [i for i, (node, fld) in enumerate(zip(nodes, fields))
                  if node.inputs and fld.size and not fld.is_global]
    if names is None:
        grid = {node.name: _grid(fld) for node, fld in zip(nodes, fields)}
        return [i for i in measurable if all(_grid(fields[i]) != grid[name] for name in nodes[i].inputs)]
    by_name = {nodes[i].name: i for i in measurable}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise UsageError(f"--layers: no spatial layer named {', '.join(map(repr, unknown))}; "
                         f"choose among: {', '.join(by_name) or 'none'}")
    return [by_name[name] for name in names]


def _grid(field):
    return field.size, field.jump


def effective_fields(model, nodes, fields, indices, inputs):
    """An EffectiveField per index in `indices`, averaged over `inputs` (a numpy batch shaped like the input)."""
    if not indices:
        raise UsageError(f"model {model.name!r} has no layer with a spatial map: no effective field to measure")
    upstream = nodes[:max(indices) + 1]  # the layers after the last one measured need not run
    sums = _gradient_sums(model, upstream, [nodes[i].name for i in indices], inputs)
    result = []
    for i, total in zip(indices, sums):
        unit = tuple(n // 2 for n in nodes[i].output_shape[:-1])
        gradient = total / len(inputs)
        result.append(_describe(i, gradient, unit, fields[i]))
    return result


def _gradient_sums(model, nodes, names, inputs):
    """Per named node, the sum over inputs of |d (centre unit, summed over channels) / d input|, summed over
    the input channels. The graph runs layer by layer (graph.run), so nested models' layers are reachable."""
    tf = quiet_tensorflow()

    sums = [np.zeros(inputs.shape[1:-1]) for _ in names]
    for start in range(0, len(inputs), CHUNK):
        x = tf.constant(inputs[start:start + CHUNK], dtype=model.inputs[0].dtype)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            values = run(nodes, x)
            targets = [_centre_sum(tf, values[name]) for name in names]
        for k, target in enumerate(targets):
            grad = tape.gradient(target, x).numpy().astype(np.float64)
            sums[k] += np.abs(grad).sum(axis=(0, grad.ndim - 1))
        del tape
    return sums


def _centre_sum(tf, output):
    """The centre unit of every input in the batch, summed over channels and inputs (inputs are independent)."""
    centre = tuple(n // 2 for n in output.shape[1:-1])
    return tf.reduce_sum(tf.cast(output[(slice(None),) + centre], "float32"))


def _describe(index, gradient, unit, field):
    """Radii around the unit's field centre, and the mass share outside its theoretical field."""
    centre = tuple(c + i * j for c, i, j in zip(field.start, unit, field.jump))
    distance = _square_distance(gradient.shape, centre)
    radii = {share: radius(gradient, distance, share) for share in SHARES}
    inside = np.zeros(gradient.shape, dtype=bool)
    inside[tuple(slice(low, high + 1) for low, high in unit_bounds(field, unit))] = True
    total = gradient.sum()
    outside = float(gradient[~inside].sum() / total) if total else 0.0
    return EffectiveField(index, gradient, unit, centre, radii, max(field.size) / 2, outside)


def _square_distance(shape, centre):
    """Per pixel, the largest distance along any axis from `centre` (pixel units: a square's half-side - 1/2)."""
    grids = np.meshgrid(*[np.arange(n) - c for n, c in zip(shape, centre)], indexing="ij")
    return np.max(np.abs(np.stack(grids)), axis=0)


def radius(gradient, distance, share):
    """Half-side of the smallest centred square holding `share` of the gradient mass (0 if the map is zero)."""
    total = gradient.sum()
    if not total:
        return 0.0
    order = np.argsort(distance, axis=None, kind="stable")
    mass = np.cumsum(gradient.ravel()[order])
    first = int(np.searchsorted(mass, share * total * (1 - 1e-12)))
    return float(distance.ravel()[order][min(first, len(order) - 1)] + 0.5)
