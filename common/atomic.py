"""Path-first atomic writers: a file appears complete or not at all (a temporary file, then a rename).

Only a regular file is ever renamed over. A symlink is followed (its target is written, the link stays); a
character device or FIFO (/dev/null, /dev/stdout, a named pipe) is written through, never replaced: run as root, a
rename would put a plain file where a system device was. A folder, socket or block device is refused.
"""
import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from common.errors import UsageError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the same folder; on success it replaces `path` in one step (or, for a device or
    FIFO at `path`, is copied into it)."""
    path = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    through = _written_through(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tempfile.gettempdir() if through else path.parent, prefix=f".{path.name}.",
                               suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        if through:
            _copy_into(tmp, path)
        else:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _written_through(path):
    """True for a character device or FIFO at `path` (written through); refuses what is neither that nor a regular
    file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISREG(mode):
        return False
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return True
    kind = "a folder" if stat.S_ISDIR(mode) else "a socket or block device"
    raise UsageError(f"cannot write {path}: it is {kind}; give a file name")


def _copy_into(tmp, path):
    """Write the finished temporary file into the device or FIFO at `path` (a FIFO must have a reader)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise UsageError(f"cannot write {path}: it is a FIFO that no process reads") from None
        raise
    os.set_blocking(fd, True)
    with open(tmp, "rb") as source, open(fd, "wb") as target:
        shutil.copyfileobj(source, target)


def _umask():
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def write_text(path, text):
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj):
    """Write `obj` as indented JSON (UTF-8, final newline), atomically."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_csv(path, frame, **options):
    """Write a pandas DataFrame as CSV (to_csv's `options`), atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **options)


def write_stream(path, write, data):
    """Call write(data, stream) on a temporary text file beside `path`, then rename it over `path`."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as stream:
        write(data, stream)
