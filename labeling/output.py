"""Write the labels CSV and its summary JSON: byte-identical for the same table, and atomically to files."""
import csv
import json
import os

from cnn.runfolder import UsageError, atomic_path


def check_destination(path):
    """Fail before any work when `path` cannot be written: its folder is missing, or it is a folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path}: folder {folder} does not exist; create it or choose another -o")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {path}: it is a folder; give a file name such as {path}/labels.csv")


def summary_path(path):
    """Where the summary JSON goes beside the CSV: labels.csv -> labels.summary.json."""
    return os.path.splitext(path)[0] + ".summary.json"


def write_csv(table, stream):
    """The table as CSV (header, '\\n' line ends, minimal quoting) on a text stream.

    Fast path: join the rows as plain text, and keep it only when the text shows no field needed quoting
    (exactly one comma per column gap, one newline per row, no quote or carriage return); else csv.writer.
    """
    columns = [table[column].tolist() for column in table.columns]
    text = "\n".join(map(",".join, zip(*columns)))
    rows, gaps = len(table), len(table.columns) - 1
    if text.count(",") == rows * gaps and text.count("\n") == rows - 1 and '"' not in text and "\r" not in text:
        stream.write(",".join(table.columns) + "\n" + text + "\n")
        return
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(zip(*columns))


def write_json(data, stream):
    """`data` as indented JSON with a final newline."""
    json.dump(data, stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def write_atomic(path, write, data):
    """Call write(data, stream) on a temporary file beside `path`, then rename it over `path`.

    A reader never sees a half-written file, and a failure leaves no file behind.
    """
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8", newline="") as stream:
        write(data, stream)
