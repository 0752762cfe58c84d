"""The analysis pipeline: walk the model once, then cost each layer and/or follow its receptive field; measure
effective receptive fields and per-layer time when asked."""
from analysis.flops import model_costs
from analysis.graph import walk
from analysis.receptive import receptive_fields
from analysis.tables import effective_rf_table, flops_table, receptive_field_table, timing_table


def analyze(model, *, flops=True, receptive_field=True, empirical=False, convention="standard", source="",
            effective_rf=None, timing=None):
    """Return (tables, meta): the requested analyses as Tables, and model facts plus warnings for the report.
    `effective_rf` (an ErfOptions) and `timing` (a TimingOptions) add those measurements."""
    nodes = walk(model)
    costs = model_costs(nodes)
    tables = []
    if flops:
        tables.append(flops_table(nodes, costs, convention))
    if receptive_field:
        tables.append(_field_table(nodes, empirical))
    if effective_rf:
        tables.append(_effective_rf_table(model, effective_rf))
    if timing:
        from analysis.timing import measure_times

        tables.append(timing_table(nodes, costs, measure_times(model, nodes, timing), timing))
    meta = {"model": model.name, "source": source, "input_shape": list(nodes[0].output_shape),
            "layers": sum(1 for node in nodes if node.inputs), "convention": convention,
            "warnings": [f"layer {node.name!r} ({node.kind}) is not a known type: counted as 0 FLOPs and as not "
                         "changing the receptive field" for node, cost in zip(nodes, costs) if not cost.known]}
    return tables, meta


def _field_table(nodes, empirical):
    """The receptive-field table, with the gradient measurement beside the analytic field if asked."""
    fields = receptive_fields(nodes)
    if not empirical:
        return receptive_field_table(nodes, fields)
    from analysis.empirical import analytic_bounds, measure_fields

    measured = measure_fields(nodes, fields)
    predicted = [analytic_bounds(node, fld) for node, fld in zip(nodes, fields)]
    return receptive_field_table(nodes, fields, measured, predicted)


def _effective_rf_table(model, options):
    """Measure the ERF over random weights and pixels, or the model's own weights on images from a labels CSV;
    draw it if `options.plot` names a file."""
    from analysis.effective_rf import effective_fields, spatial_nodes
    from analysis.erf_inputs import csv_images, random_pixels, random_weights

    shape = tuple(model.inputs[0].shape[1:])
    if options.images:
        inputs = csv_images(options.images, shape, options.n, options.seed)
        what = f"{len(inputs)} images from {options.images} (the model's own weights)"
    else:
        model = random_weights(model, options.seed)
        inputs = random_pixels(shape, options.n, options.seed)
        what = (f"{len(inputs)} inputs (random weights from the layers' initialisers, uniform random pixels 0-255, "
                f"seed {options.seed})")
    nodes = walk(model)
    fields = receptive_fields(nodes)
    measured = effective_fields(model, nodes, fields, spatial_nodes(nodes, fields, options.layers), inputs)
    if options.plot:
        from analysis.erf_figure import draw_effective_fields

        draw_effective_fields(nodes, fields, measured, options.plot)
    return effective_rf_table(nodes, fields, measured, what)
