"""CSV and JSON writing: the fast CSV path equals csv.writer's output, and writes are atomic."""
import csv
import io
import os

import pandas as pd
import pytest

from common.errors import UsageError
from common.atomic import write_stream
from labeling.output import check_destination, stream_csv, stream_json, summary_path


def reference_csv(table):
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(table.itertuples(index=False))
    return stream.getvalue()


@pytest.mark.parametrize("paths", [
    ["d/img/A_Tee/1.jpg", "d/img/Caf&eacute;_Tee/2.jpg"],  # plain: the fast path
    ["d/img/A, B_Tee/1.jpg", "d/img/C_Tee/2.jpg"],  # a comma: must be quoted
    ['d/img/"Q"_Tee/1.jpg', "d/x.jpg"],  # a quote: must be doubled and quoted
    ["d/img/new\nline_Tee/1.jpg", "d/x.jpg"],  # a newline inside a name
])
def test_csv_matches_csv_writer_and_reads_back(paths):
    table = pd.DataFrame({"path": paths, "label": ["Tee", "Tee"], "group": ["g", "h"], "split": ["train", ""]})
    stream = io.StringIO()
    stream_csv(table, stream)
    assert stream.getvalue() == reference_csv(table)
    back = pd.read_csv(io.StringIO(stream.getvalue()), keep_default_na=False)
    assert back["path"].tolist() == paths and back["split"].tolist() == ["train", ""]


def test_atomic_write_replaces_whole_file_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "labels.csv"
    target.write_text("old\n")

    def fail(data, stream):
        stream.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_stream(str(target), fail, None)
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["labels.csv"]
    write_stream(str(target), stream_json, {"rows": 3})
    assert target.read_text() == '{\n  "rows": 3\n}\n' and os.listdir(tmp_path) == ["labels.csv"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_destination_checks_and_summary_path(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        check_destination(str(tmp_path / "missing" / "labels.csv"))
    with pytest.raises(UsageError, match="it is a folder"):
        check_destination(str(tmp_path))
    check_destination(str(tmp_path / "labels.csv"))
    assert summary_path("out/labels.csv") == "out/labels.summary.json"
