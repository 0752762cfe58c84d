"""Path-first atomic writers: a file appears complete or not at all (a temporary file, then a rename)."""
import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the same folder; on success it replaces `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
