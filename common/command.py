"""The one wrapper every command's main() runs its work in: user errors and Ctrl-C become one line."""
import argparse
import errno
import os
import sys

from common.console import speaking_as
from common.errors import UsageError
from common.interrupts import pressed, remembering_ctrl_c


def run_command(prog, action, interrupted="interrupted"):
    """Run `action()` and return the exit status: its own (or 0), 2 for a UsageError or a missing TensorFlow,
    130 for Ctrl-C.

    A user error prints `PROG: error: MESSAGE` on one line; Ctrl-C prints `PROG: INTERRUPTED`; a closed
    stdout (`make-labels ROOT | head`) ends quietly, and a full disk (`> /dev/full`) is one line and exit 2.
    Anything else is a bug and keeps its traceback.
    """
    try:
        with speaking_as(prog), remembering_ctrl_c():
            status = action()
            if pressed():  # swallowed on the way, after training's last check (scoring, export)
                raise KeyboardInterrupt
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        return 2
    except ImportError as e:  # Keras's own guard raises a plain ImportError naming "the tensorflow module"
        if (e.name or "").partition(".")[0] != "tensorflow" and "the tensorflow module" not in str(e):
            raise
        print(f"{prog}: error: this needs TensorFlow, which is not installed (pip install tensorflow-cpu); "
              "train-cnn, evaluate-cnn and predict-cnn run without it on Keras's JAX backend (KERAS_BACKEND=jax, "
              "docs/train-cnn.md)", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr, flush=True)
        return 130
    except BrokenPipeError:  # the reader left: silence the final flush of stdout too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the final flush would fail again
        where = f" writing {error.filename}" if error.filename else ""
        print(f"{prog}: error: {error.strerror}{where}; free some space or write the output elsewhere",
              file=sys.stderr, flush=True)
        return 2
    return 0 if status is None else status


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's conventions: defaults shown in --help, and a bad argument reported on
    one line (`PROG: error: ...`, exit 2) with a pointer to --help instead of the whole usage block."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
