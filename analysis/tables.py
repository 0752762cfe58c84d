"""The two analyses as tables: one row per layer call with raw values, totals, and sentences saying
what the numbers mean for this model."""
import math
from dataclasses import dataclass, field

from analysis.flops import STANDARD_RULES, TF_PROFILER_RULES, TRAINING_RULE


@dataclass
class Table:
    """One analysis: columns as (key, header), rows as dicts of raw values, totals, and summary sentences."""

    key: str
    title: str
    columns: list
    rows: list
    totals: dict = field(default_factory=dict)
    summary: list = field(default_factory=list)


def flops_table(nodes, costs, convention="standard"):
    """Per layer: output shape, parameters, MACs, FLOPs (in `convention`) and activation size; totals."""
    header = "FLOPs" if convention == "standard" else "FLOPs (tf-profiler)"
    columns = [("layer", "layer"), ("type", "type"), ("output_shape", "output shape"), ("params", "params"),
               ("macs", "MACs"), ("flops", header), ("activations", "activations")]
    rows = []
    for node, cost in zip(nodes, costs):
        rows.append({"layer": node.name, "type": node.kind, "output_shape": list(node.output_shape),
                     "params": _params(node), "macs": cost.macs,
                     "flops": cost.flops if convention == "standard" else cost.tf_flops,
                     "flops_standard": cost.flops, "flops_tf_profiler": cost.tf_flops,
                     "activations": math.prod(node.output_shape)})
    totals = {key: sum(row[key] for row in rows)
              for key in ("params", "macs", "flops", "flops_standard", "flops_tf_profiler", "activations")}
    totals["training_step_flops_estimate"] = 3 * totals["flops"]
    table = Table("flops", f"FLOPs per layer (convention: {convention})", columns, rows, totals)
    table.summary = _flops_summary(nodes, costs, table, convention)
    return table


def _params(node):
    """Parameters of the layer, counted at its first call only (a shared layer owns one set of weights)."""
    if not node.first_call or not hasattr(node.layer, "count_params"):
        return 0
    return node.layer.count_params() if node.layer.built else 0


def _flops_summary(nodes, costs, table, convention):
    totals, rows = table.totals, table.rows
    image = "x".join(map(str, nodes[0].output_shape))
    costliest = max(rows, key=lambda row: row["flops"])
    heaviest = max(rows, key=lambda row: row["params"])
    lines = [
        "Convention: " + (STANDARD_RULES if convention == "standard" else TF_PROFILER_RULES),
        f"Forward pass, one {image} image: {totals['macs']:,} MACs; {totals['flops']:,} FLOPs "
        f"({totals['flops'] / 1e9:.3g} GFLOPs) in this convention "
        f"(standard: {totals['flops_standard']:,}; TensorFlow profiler: {totals['flops_tf_profiler']:,}).",
        f"Training step, estimate: ~{totals['training_step_flops_estimate']:,} FLOPs per image "
        f"({totals['training_step_flops_estimate'] / 1e9:.3g} GFLOPs); rule: {TRAINING_RULE}.",
    ]
    if totals["flops"]:
        lines.append(f"Costliest layer: {costliest['layer']} ({costliest['flops'] / totals['flops']:.1%} of FLOPs).")
    if totals["params"]:
        lines.append(f"Most parameters: {heaviest['layer']} ({heaviest['params']:,}, "
                     f"{heaviest['params'] / totals['params']:.1%} of {totals['params']:,}).")
    unknown = sorted({node.kind for node, cost in zip(nodes, costs) if not cost.known})
    if unknown:
        lines.append(f"Counted as zero (no rule for these layer types): {', '.join(unknown)}.")
    return lines


def receptive_field_table(nodes, fields, measured=None, predicted=None):
    """Per layer: field size, jump, effective padding, first unit's centre, share of the input; with
    `measured`/`predicted` (per node (first, last) bounds), the gradient measurement beside the analytic one."""
    columns = [("layer", "layer"), ("type", "type"), ("output_shape", "output shape"), ("field", "field"),
               ("jump", "jump"), ("padding", "eff. padding"), ("start", "first centre"),
               ("input_fraction", "input seen"), ("note", "note")]
    if measured is not None:
        columns[-1:-1] = [("measured", "measured"), ("agree", "agree")]
    image = nodes[0].output_shape[:-1]
    rows = []
    for i, (node, fld) in enumerate(zip(nodes, fields)):
        row = {"layer": node.name, "type": node.kind, "output_shape": list(node.output_shape),
               "field": "global" if fld.is_global else list(fld.size),
               "jump": None if fld.is_global else list(fld.jump),
               "padding": None if fld.is_global else list(fld.padding),
               "start": None if fld.is_global else list(fld.start),
               "input_fraction": _fraction(fld, image), "coverage": [list(c) for c in fld.coverage],
               "note": fld.note}
        if measured is not None:
            row.update(_comparison(measured[i], predicted[i], fld))
        rows.append(row)
    table = Table("receptive_field", "Receptive field per layer (input pixels)", columns, rows)
    table.summary = _field_summary(nodes, fields, rows, image)
    return table


def _fraction(fld, image):
    """Share of the input one unit sees (local), or that the layer's units see together (global)."""
    if not image:
        return 1.0
    if fld.is_global:
        return math.prod(high - low + 1 for low, high in fld.coverage) / math.prod(image)
    return math.prod(min(r, n) for r, n in zip(fld.size, image)) / math.prod(image)


def _comparison(measured, predicted, fld):
    """The measured extent and whether it matches the analytic bounds (or lies within them when approximate)."""
    if measured is None:
        return {"measured": None, "agree": None, "measured_bounds": None, "analytic_bounds": None}
    sizes = [high - low + 1 for low, high in measured]
    if fld.approximate:
        agree = all(pl <= ml and mh <= ph for (ml, mh), (pl, ph) in zip(measured, predicted))
    else:
        agree = tuple(map(tuple, measured)) == tuple(map(tuple, predicted))
    return {"measured": sizes, "agree": agree, "measured_bounds": [list(b) for b in measured],
            "analytic_bounds": [list(b) for b in predicted]}


def _field_summary(nodes, fields, rows, image):
    size = "x".join(map(str, image))
    lines = ["Field: input pixels one unit of the layer can see (Araujo et al., Distill 2019); jump: input pixels "
             "between neighbouring units (effective stride); eff. padding: how far the first unit's field reaches "
             "before pixel 0; first centre: where the first unit's field is centred (pixel 0 = first pixel)."]
    local = [(node, fld) for node, fld in zip(nodes, fields) if not fld.is_global and node.inputs]
    convs = [(node, fld) for node, fld in local if "Conv" in node.kind]
    if convs:
        node, fld = convs[-1]
        lines.append(f"The last convolution, {node.name}, sees {_dims(fld.size)} pixels of the {size} input "
                     f"({_fraction(fld, image):.2%} of it).")
    if local and local[-1][0] is not (convs[-1][0] if convs else None):
        node, fld = local[-1]
        lines.append(f"{node.name}, the last layer with a spatial map, sees {_dims(fld.size)} pixels per unit, "
                     f"its units {_dims(fld.jump)} pixels apart ({_dims(node.output_shape[:-1])} positions).")
    first_global = next(((node, fld) for node, fld in zip(nodes, fields) if fld.is_global and node.inputs), None)
    if first_global and image:
        node, fld = first_global
        seen = "x".join(f"{low}-{high}" for low, high in fld.coverage)
        share = _fraction(fld, image)
        rest = ")." if share == 1 else ("; the rest lies beyond the last unit's field, dropped by rounding down "
                                         "in 'valid' convolutions or pooling).")
        lines.append(f"From {node.name} ({node.kind}) on, layers are global: {nodes[-1].name} combines every "
                     f"position, so it is what sees the whole image (the whole garment): pixels {seen} "
                     f"({share:.1%} of it{rest}")
    misaligned = [node.name for node, fld in zip(nodes, fields) if fld.note.startswith("branches misaligned")]
    if misaligned:
        lines.append(f"Branches merge on misaligned grids at: {', '.join(misaligned)} (field = their union).")
    unknown = sorted({node.kind for node, fld in zip(nodes, fields) if not fld.known})
    if unknown:
        lines.append(f"Assumed not to change the field (unknown layer types): {', '.join(unknown)}.")
    checked = [row for row in rows if row.get("agree") is not None]
    if checked:
        agree = sum(bool(row["agree"]) for row in checked)
        lines.append(f"Measured by gradients (centre unit, positive weights): {agree} of {len(checked)} layers "
                     "agree with the analytic field.")
    return lines


def effective_rf_table(nodes, fields, measured, inputs):
    """Per measured layer: theoretical field, the centre unit, and the radii holding 50% and 90% of its
    gradient mass, in pixels and as a share of the theoretical half-size; `inputs` says what was averaged."""
    columns = [("layer", "layer"), ("type", "type"), ("output_shape", "output shape"), ("field", "field"),
               ("unit", "centre unit"), ("radius_50", "r50 px"), ("radius_90", "r90 px"),
               ("ratio_50", "r50 / half"), ("ratio_90", "r90 / half")]
    rows = []
    for erf in measured:
        node, fld = nodes[erf.index], fields[erf.index]
        rows.append({"layer": node.name, "type": node.kind, "output_shape": list(node.output_shape),
                     "field": list(fld.size), "unit": list(erf.unit), "field_centre": list(erf.centre),
                     "radius_50": erf.radii[0.5], "radius_90": erf.radii[0.9], "half_size": erf.half_size,
                     "ratio_50": erf.radii[0.5] / erf.half_size, "ratio_90": erf.radii[0.9] / erf.half_size,
                     "mass_outside_field": erf.outside})
    table = Table("effective_rf", "Effective receptive field per layer (input pixels)", columns, rows)
    table.summary = _erf_summary(rows, inputs)
    return table


def _erf_summary(rows, inputs):
    last = rows[-1]
    lines = [f"Effective receptive field (Luo et al., NeurIPS 2016): |gradient| of the layer's centre unit (summed "
             f"over channels) with respect to the input, summed over input channels and averaged over {inputs}.",
             "r50, r90: half-side in pixels of the smallest square, centred on the unit's theoretical field, that "
             "holds 50% / 90% of that gradient mass; / half: the radius over half the theoretical field "
             "(1 = as wide as the field).",
             f"{last['layer']} ({_dims(last['field'])} field): half the gradient mass lies within "
             f"{last['radius_50']:g} px of the centre ({last['ratio_50']:.0%} of the half-size, "
             f"{last['half_size']:g} px), 90% within {last['radius_90']:g} px ({last['ratio_90']:.0%})."]
    outside = [row["layer"] for row in rows if row["mass_outside_field"]]
    lines.append("Gradient outside the theoretical field: " +
                 (f"nonzero at {', '.join(outside)}." if outside else "none (0 at every layer)."))
    return lines


def timing_table(nodes, costs, timings, options):
    """Per layer: median time per batch, share of the layers' total, FLOPs for the batch (standard convention;
    x3 for a training step), the GFLOP/s they imply and their share of the matmul peak measured in the same run
    (in the model's compute precision); totals: the whole model, the ratio, the peak."""
    columns = [("layer", "layer"), ("type", "type"), ("output_shape", "output shape"), ("time_ms", "time ms"),
               ("share", "share"), ("flops", "FLOPs (batch)"), ("gflops_per_s", "GFLOP/s"), ("of_peak", "of peak")]
    factor = options.batch_size * (3 if options.training_step else 1)
    total = sum(timings.layers.values())
    rows = []
    for node, cost in zip(nodes, costs):
        if node.name in timings.layers:
            seconds, flops = timings.layers[node.name], cost.flops * factor
            rows.append({"layer": node.name, "type": node.kind, "output_shape": list(node.output_shape),
                         "time_s": seconds, "time_ms": seconds * 1e3, "share": seconds / total, "flops": flops,
                         "gflops_per_s": flops / seconds / 1e9, "of_peak": flops / seconds / 1e9 / timings.peak_gflops})
    totals = {"layers_s": total, "whole_model_s": timings.whole, "layers_over_whole": total / timings.whole,
              "matmul_peak_gflops_per_s": timings.peak_gflops, "matmul_peak_dtype": timings.peak_dtype,
              "batch_size": options.batch_size,
              "training_step": options.training_step, "repeats": options.repeats, "device": timings.device,
              "method": timings.method}
    what = "forward + backward (training step)" if options.training_step else "inference (forward)"
    table = Table("timing", f"Measured time per layer: {what}, batch {options.batch_size}, {timings.device}",
                  columns, rows, totals)
    table.summary = _timing_summary(rows, totals, options)
    return table


def _timing_summary(rows, totals, options):
    slowest = max(rows, key=lambda row: row["time_s"])
    flops_rule = "3 x the forward FLOPs (the estimate rule)" if options.training_step else "forward FLOPs"
    return [f"Method: {totals['method']}. FLOPs: the standard convention's {flops_rule} x {options.batch_size} "
            "images; GFLOP/s = FLOPs / time; of peak = GFLOP/s / the matmul peak below (a layer far under it is held "
            "back by memory traffic, not arithmetic).",
            f"Sum of layers {totals['layers_s'] * 1e3:.4g} ms, whole model {totals['whole_model_s'] * 1e3:.4g} ms "
            f"per batch: ratio {totals['layers_over_whole']:.2f} (they differ by the overheads of separate calls, the "
            "fusion a whole-model graph allows, and noise from other work on the machine).",
            f"Slowest layer: {slowest['layer']} ({slowest['share']:.1%} of the layers' time, "
            f"{slowest['gflops_per_s']:.3g} GFLOP/s). Peak: a {totals['matmul_peak_dtype']} matmul reaches "
            f"{totals['matmul_peak_gflops_per_s']:.4g} GFLOP/s here, in the same run."]


def _dims(values):
    return "x".join(f"{v:g}" for v in values)
