"""Ctrl-C that is never lost: the press is remembered as well as raised, so long work can raise it again.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives; when that is inside
a destructor or a library's bare `except:` (TensorFlow's and Keras's tracing have some), the exception is swallowed
and training would go on as if nothing had been pressed. common.command.run_command installs the handler below for
the command's lifetime, cnn.training.callbacks.StopOnCtrlC raises again before the next batch, and run_command
treats a press whose exception never reached it as Ctrl-C all the same.
"""
import contextlib
import signal
import threading

_pressed = []  # one entry per Ctrl-C since the outermost command began


def _on_ctrl_c(signum, frame):
    _pressed.append(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def remembering_ctrl_c():
    """Within the block Ctrl-C raises KeyboardInterrupt and is remembered (pressed() is True). Leaves SIGINT as
    it is where it is not Python's default handler: ignored (a background job), another program's, or ours already
    (a command run by another command)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    try:
        signal.signal(signal.SIGINT, _on_ctrl_c)  # inside: a press landing just after still restores the default
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _pressed.clear()


def pressed():
    """Whether Ctrl-C was pressed since the outermost command began (whether or not its exception got through)."""
    return bool(_pressed)
