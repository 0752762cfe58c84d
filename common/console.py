"""The one line-writer for every command's messages: `PROG: message` on stderr, flushed at once.

stdout stays for what a command exists to print (make-labels' CSV, analysis tables); summaries, warnings and
progress go to stderr through a writer made here. PROG is the command that is running (set once by
common.command.run_command), so a module shared by several commands (the loader, the contact sheets, training
run by sweep-cnn or audit-labels) speaks in the name of the one the user typed; used as a library, a writer
speaks in the name it was made with.
"""
import contextlib
import sys

_running = []  # the names of the commands running, the one the user typed first (common.command.run_command)


@contextlib.contextmanager
def speaking_as(prog):
    """Within the block every writer speaks as `prog` (the command the user typed)."""
    _running.append(prog)
    try:
        yield
    finally:
        _running.pop()


def writer(prog, prefix=""):
    """A function printing `PROG: PREFIXmessage` lines on stderr (e.g. writer("predict-cnn", "warning: ")), PROG
    being the running command's name where one was set."""
    def write(message):
        print(f"{_running[0] if _running else prog}: {prefix}{message}", file=sys.stderr, flush=True)

    write.__doc__ = f"A `{prog}: {prefix}...` line on stderr."
    return write
