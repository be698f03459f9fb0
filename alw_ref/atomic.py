"""Atomic file writes: a crash never leaves a half-written file.

    with atomic_write(path) as tmp:
        write_the_file(tmp)

The temporary file lives in the target's folder (so ``os.replace`` is an atomic rename on POSIX),
is flushed with fsync and given a normal file mode before the rename, and is removed if the block
raises; an existing file at ``path`` stays untouched until the final rename.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    """The process umask (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path):
    """Yield a temporary file name beside ``path``; on success rename it to ``path`` (module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it 0600; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``atomic_write``)."""
    with atomic_write(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
