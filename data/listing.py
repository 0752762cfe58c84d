"""Write DeepFashion's listing files (Anno/list_category_*.txt, Eval/list_eval_partition.txt) for generated trees."""
from pathlib import Path


def write_listing(path, header, rows, width=71):
    """`COUNT`, the header line, then one `NAME VALUE` row per (name, value), names padded to `width`.

    The release pads with runs of spaces; a name of `width` characters or more still gets one space.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [str(len(rows)), header] + [f"{name:<{width}} {value}" for name, value in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
