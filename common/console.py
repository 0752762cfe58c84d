"""The one line-writer for every command's messages: `PROG: message` on stderr, flushed at once.

stdout stays for what a command exists to print (make-labels' CSV, analysis tables); summaries, warnings and
progress go to stderr through a writer made here.
"""
import sys


def writer(prog, prefix=""):
    """A function printing `PROG: PREFIXmessage` lines on stderr (e.g. writer("predict-cnn", "warning: "))."""
    def write(message):
        print(f"{prog}: {prefix}{message}", file=sys.stderr, flush=True)

    write.__doc__ = f"A `{prog}: {prefix}...` line on stderr."
    return write
