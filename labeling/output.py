"""Write the labels CSV and its summary JSON: byte-identical for the same table, and atomically to files."""
import csv
import json
import os

from common.errors import UsageError


def check_destination(path, root=None):
    """Fail before any work when `path` cannot or must not be written.

    Refused: a missing folder, a folder, an existing file that is not a .csv (it would be replaced), and a
    path inside the scanned `root` (make-labels never changes the dataset it reads).
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path}: folder {folder} does not exist; create it or choose another -o")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {path}: it is a folder; give a file name such as {path}/labels.csv")
    if os.path.exists(path) and not path.lower().endswith(".csv"):
        raise UsageError(f"cannot write {path}: it exists and is not a .csv file; choose a .csv name for -o")
    if root is not None and os.path.isdir(root):
        inside = os.path.commonpath([os.path.realpath(folder), os.path.realpath(root)]) == os.path.realpath(root)
        if inside:
            raise UsageError(f"cannot write {path}: it lies inside the scanned folder {root}, which make-labels "
                             f"only reads; write the CSV outside it")


def summary_path(path):
    """Where the summary JSON goes beside the CSV: labels.csv -> labels.summary.json."""
    return os.path.splitext(path)[0] + ".summary.json"


def stream_csv(table, stream):
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


def stream_json(data, stream):
    """`data` as indented JSON with a final newline."""
    json.dump(data, stream, indent=2, ensure_ascii=False)
    stream.write("\n")
