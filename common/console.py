"""Every command's messages, through the standard `logging` module: `PROG: message` lines on stderr, at once.

stdout stays for what a command exists to print (make-labels' CSV, analysis tables); summaries, warnings and
progress go to stderr through the logger LOGGER ("clothing_cnn"), so a program that uses the toolkit as a library
can raise its level, silence it or send it elsewhere with logging's own tools. PROG is the command that is running
(set once by common.command.run_command), so a module shared by several commands (the loader, the contact sheets,
training run by sweep-cnn or audit-labels) speaks in the name of the one the user typed; used as a library, a
writer speaks in the name it was made with.
"""
import contextlib
import logging
import sys

LOGGER = logging.getLogger("clothing_cnn")
_running = []  # the names of the commands running, the one the user typed first (common.command.run_command)


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever sys.stderr is when a record is emitted (a test or a caller may swap it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


if not LOGGER.handlers:  # configured once, on first import; a library user may reconfigure it
    _handler = _Stderr()
    _handler.setFormatter(logging.Formatter("%(prog)s: %(message)s"))
    LOGGER.addHandler(_handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False


@contextlib.contextmanager
def speaking_as(prog):
    """Within the block every writer speaks as `prog` (the command the user typed)."""
    _running.append(prog)
    try:
        yield
    finally:
        _running.pop()


def running(default):
    """The name of the command the user typed, or `default` outside any command."""
    return _running[0] if _running else default


def writer(prog, prefix=""):
    """A function logging `PROG: PREFIXmessage` lines (e.g. writer("predict-cnn", "warning: ")), PROG being the
    running command's name where one was set; a "warning: " line is logged at WARNING, others at INFO."""
    def write(message):
        text = f"{prefix}{message}"
        level = logging.WARNING if text.startswith("warning:") else logging.INFO
        LOGGER.log(level, text, extra={"prog": running(prog)})

    write.__doc__ = f"A `{prog}: {prefix}...` line on stderr."
    return write
