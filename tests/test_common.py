"""The shared base: the command wrapper's exit statuses, one-line argument errors, and the atomic writers."""
import json
import os

import pandas as pd
import pytest

from common.atomic import write_csv, write_json, write_text
from common.command import ArgumentParser, run_command
from common.errors import MissingFilesError, UsageError


def raising(error):
    def action():
        raise error
    return action


@pytest.mark.parametrize("action, status, line", [
    (lambda: None, 0, None),
    (lambda: 3, 3, None),
    (raising(UsageError("bad value")), 2, "prog: error: bad value"),
    (raising(MissingFilesError("2 files missing")), 2, "prog: error: 2 files missing"),
    (raising(KeyboardInterrupt()), 130, "prog: stopped by you"),
])
def test_run_command_exit_statuses(action, status, line, capsys):
    assert run_command("prog", action, "stopped by you") == status
    err = capsys.readouterr().err.strip()
    assert err == (line or "")


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_command("prog", lambda: 1 / 0)


def test_argument_errors_are_one_line(capsys):
    parser = ArgumentParser(prog="prog")
    parser.add_argument("--n", type=int, default=3, help="how many")
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--n", "x"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "prog: error: argument --n: invalid int value: 'x' (see prog --help)\n"
    assert "(default: 3)" in parser.format_help()


def test_atomic_writers_leave_whole_files_and_no_temporaries(tmp_path):
    write_text(tmp_path / "a.txt", "één\n")
    write_json(tmp_path / "b.json", {"label": "Café"})
    write_csv(tmp_path / "c.csv", pd.DataFrame({"x": [1, 2]}), index=False)
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "één\n"
    assert (tmp_path / "b.json").read_text(encoding="utf-8") == '{\n  "label": "Café"\n}\n'
    assert (tmp_path / "c.csv").read_text() == "x\n1\n2\n"
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.json", "c.csv"]


def test_a_shared_module_speaks_as_the_command_that_runs(capsys):
    """A writer made by a module of another command prints the running command's name, and its own outside one."""
    from common.console import writer

    warn = writer("show-batch", "warning: ")
    assert run_command("audit-data", lambda: warn("cannot read x.jpg")) == 0
    warn("outside")
    assert capsys.readouterr().err.splitlines() == ["audit-data: warning: cannot read x.jpg",
                                                    "show-batch: warning: outside"]


def test_messages_go_through_logging_so_a_library_user_can_capture_or_silence_them(capsys):
    import logging

    from common.console import LOGGER, writer

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append((record.levelname, record.prog, record.getMessage()))

    keep = Keep()
    LOGGER.addHandler(keep)
    try:
        writer("predict-cnn", "warning: ")("a.jpg skipped")
        writer("train-cnn")("epoch 1")
        LOGGER.setLevel(logging.WARNING)
        writer("train-cnn")("not shown")
    finally:
        LOGGER.setLevel(logging.INFO)
        LOGGER.removeHandler(keep)
    assert seen == [("WARNING", "predict-cnn", "warning: a.jpg skipped"), ("INFO", "train-cnn", "epoch 1")]
    assert capsys.readouterr().err.splitlines() == ["predict-cnn: warning: a.jpg skipped", "train-cnn: epoch 1"]


def test_a_class_name_with_mathtext_is_drawn_as_text(tmp_path):
    """'a$\\foo$b' would be parsed as mathtext and crash the drawing; the grid draws it as it is."""
    import numpy as np

    from cnn.evaluation.pictures import draw_grid

    image = np.zeros((8, 8, 3), np.uint8)
    draw_grid([image, image], ["a$\\foo$b", "$x^$"], ["black", "black"], [0, 1], 2, tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_a_confusion_matrix_draws_mathtext_class_names_as_text(tmp_path):
    import numpy as np

    from cnn.evaluation.reports import plot_confusion

    plot_confusion(np.eye(2), ["a$\\foo$b", "plain"], tmp_path / "confusion.png")
    assert (tmp_path / "confusion.png").stat().st_size > 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root (CI and the project's machines run as root)")
def test_a_character_device_at_the_output_is_written_through_never_replaced(tmp_path):
    """A null device made in the test's own folder (never the machine's /dev) stays a device after a write."""
    import stat

    node = tmp_path / "null.csv"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the null device's numbers
    write_csv(node, pd.DataFrame({"a": [1]}), index=False)
    write_text(node, "text")
    assert stat.S_ISCHR(os.stat(node).st_mode) and not list(tmp_path.glob(".null*"))


def test_a_fifo_at_the_output_is_written_through_and_one_without_reader_refused(tmp_path):
    import stat
    import threading

    fifo = tmp_path / "clean.csv"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="a FIFO that no process reads"):
        write_text(fifo, "nobody")
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, encoding="utf-8").read()))
    reader.start()
    import time

    for _ in range(100):  # the reader must have the FIFO open before the write
        try:
            write_text(fifo, "a,b\n1,2\n")
            break
        except UsageError:
            time.sleep(0.02)
    reader.join(10)
    assert got == ["a,b\n1,2\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_symlink_is_followed_and_a_folder_refused(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_json(link, {"a": 1})
    assert link.is_symlink() and json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(UsageError, match="it is a folder"):
        write_text(tmp_path, "x")
