"""The analysis pipeline: walk the model once, then cost each layer and/or follow its receptive field."""
from analysis.flops import model_costs
from analysis.graph import walk
from analysis.receptive import receptive_fields
from analysis.tables import flops_table, receptive_field_table


def analyze(model, *, flops=True, receptive_field=True, empirical=False, convention="standard", source=""):
    """Return (tables, meta): the requested analyses as Tables, and model facts plus warnings for the report."""
    nodes = walk(model)
    costs = model_costs(nodes)
    tables = []
    if flops:
        tables.append(flops_table(nodes, costs, convention))
    if receptive_field:
        tables.append(_field_table(nodes, empirical))
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
