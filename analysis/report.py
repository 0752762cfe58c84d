"""Print the analysis tables (table, markdown, csv, json) and write them as files: a small table of writers."""
import csv
import io
import json
import textwrap
from pathlib import Path

from common.atomic import write_json, write_text

NUMERIC = {"params", "macs", "flops", "activations", "input_fraction", "radius_50", "radius_90", "ratio_50",
           "ratio_90", "time_ms", "share", "gflops_per_s", "of_peak", "time_fwd_ms"}
FILE_NAMES = {"flops": "analysis_flops.csv", "receptive_field": "analysis_receptive_field.csv",
              "effective_rf": "analysis_effective_rf.csv", "timing": "analysis_timing.csv"}
PERCENT = {"input_fraction": "{:.3g}%", "share": "{:.1f}%", "of_peak": "{:.0f}%"}  # shown x100 with these formats
JSON_NAME = "analysis.json"
TEXT_WIDTH = 110  # the plain table format wraps its notes for a terminal; markdown leaves that to the reader


def render(tables, fmt, meta):
    """The text to print for `fmt`: one table per analysis (with its sentences for table/markdown)."""
    return WRITERS[fmt](tables, meta)


def write_files(tables, meta, out_dir):
    """Write one CSV per analysis and analysis.json (everything printed, machine-readable) into `out_dir`."""
    out_dir = Path(out_dir)
    written = []
    for table in tables:
        path = out_dir / FILE_NAMES[table.key]
        write_text(path, _csv(table))
        written.append(path)
    write_json(out_dir / JSON_NAME, as_json(tables, meta))
    return written + [out_dir / JSON_NAME]


def as_json(tables, meta):
    """Everything as one JSON-able dict: model facts, and per analysis its rows, totals and sentences."""
    doc = dict(meta)
    for table in tables:
        doc[table.key] = {"title": table.title, "layers": table.rows, "totals": table.totals, "summary": table.summary}
    return doc


def _table_text(tables, meta, tablefmt="simple", heading="{}", bullet="", width=TEXT_WIDTH):
    """The header, then each table with its summary lines (wrapped to `width` columns; None: unwrapped)."""
    parts = [_header(meta)]
    for table in tables:
        headers = [header for _, header in table.columns]
        align = ["right" if key in NUMERIC else "left" for key, _ in table.columns]
        from tabulate import tabulate

        grid = tabulate(_display_rows(table), headers=headers, tablefmt=tablefmt, colalign=align,
                        disable_numparse=True)
        notes = [bullet + line for line in table.summary]
        if width:
            notes = [textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False) for line in notes]
        parts.append("\n".join([heading.format(table.title), "", grid, ""] + notes))
    return "\n\n".join(parts) + "\n"


def _header(meta):
    shape = "x".join(map(str, meta["input_shape"]))
    return f"Model: {meta['model']} ({meta['source']}), input {shape}, {meta['layers']} layer calls"


def _markdown(tables, meta):
    return _table_text(tables, meta, tablefmt="github", heading="### {}", bullet="- ", width=None)


def _csv(table):
    """One analysis as CSV: raw numbers, shapes and fields as 'HxW' strings; the FLOPs table ends with totals."""
    rows = table.rows + ([dict(table.totals, layer="total")] if table.key == "flops" else [])
    keys = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(row.get(key)) for key in keys})
    return buffer.getvalue()


def _csv_value(value):
    """Lists as 'HxW' (sizes) or 'first-lastxfirst-last' (pixel bounds); None as empty."""
    if isinstance(value, list):
        return "x".join("-".join(map(str, v)) if isinstance(v, list) else f"{v:g}" if isinstance(v, float)
                        else str(v) for v in value)
    return "" if value is None else value


def _csv_all(tables, meta):
    return "\n".join(_csv(table) for table in tables)


def _json(tables, meta):
    return json.dumps(as_json(tables, meta), indent=2) + "\n"


def _display_rows(table):
    """Rows as display strings; the FLOPs table gets a totals row."""
    rows = list(table.rows)
    if table.key == "flops":
        totals = {key: table.totals[key] for key in ("params", "macs", "flops", "activations")}
        rows.append({"layer": "total", **totals})
    return [[_display(key, row.get(key)) for key, _ in table.columns] for row in rows]


def _display(key, value):
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if key in PERCENT:
        return PERCENT[key].format(value * 100)
    if isinstance(value, float):
        return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"
    if isinstance(value, list):
        return "x".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


WRITERS = {
    "table": _table_text,
    "markdown": _markdown,
    "csv": _csv_all,
    "json": _json,
}
