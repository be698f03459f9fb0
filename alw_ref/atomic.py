"""Atomic file writes: a crash, a kill or Ctrl-C never leaves a half-written file.

    with atomic_write(path) as tmp:
        write_the_file(tmp)

The temporary file lives in the target's folder (so ``os.replace`` is an atomic rename on POSIX),
is flushed with fsync and given a normal file mode before the rename, and is removed if the block
raises; an existing file at ``path`` stays untouched until the final rename.

Ctrl-C. While the block runs, SIGINT is *held* (``deferred_interrupt``): the signal only sets a
flag, and KeyboardInterrupt is raised at the end of the block (before the rename, so the target is
not replaced) or earlier at an ``interrupt_point()`` the writer calls between pieces. Without this,
a Ctrl-C that arrives while h5py runs C code is raised inside whatever Python callback runs next —
often a weakref callback of h5py's object registry, where Python prints "Exception ignored" and
*drops* it: the program then carried on as if nothing had been pressed.

Leftovers of a kill -9. The temporary name carries the writer's PID and a tag of its host,
``.<name>.<pid>-<host>-<random>.tmp`` (the target's part is shortened so the name never exceeds
255 bytes). ``remove_stale_temporaries(folder)`` deletes the ones that are provably abandoned: the
writer's host is this one and no process with that PID is alive; a name from another host (or of
an older alw_ref, without PID) only when the file has not been modified for ``STALE_AGE_S``. A live
writer's file is never removed (a reused PID keeps a dead writer's file: safe side).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

#: A temporary file whose writer cannot be checked (other host, no PID) is stale after this long
#: without modification (s). Live writers modify their file continuously.
STALE_AGE_S = 24 * 3600.0
_NAME_MAX = 255
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_TEMP_RE = re.compile(r"^\..+\.(?:(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-)?[^.]+\.tmp$")

_pending = threading.Event()  # a SIGINT arrived while held
_depth = 0  # nesting depth of deferred_interrupt in the main thread


def current_umask() -> int:
    """The process umask (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _hold_sigint(signum, frame):
    _pending.set()


@contextmanager
def deferred_interrupt():
    """Hold Ctrl-C inside the block; raise KeyboardInterrupt at its end or at ``interrupt_point``.

    Only the main thread receives signals; elsewhere (or when SIGINT is not handled by Python's
    default handler, e.g. ignored) the block runs unchanged. Nested blocks share one flag.
    """
    global _depth
    main = threading.current_thread() is threading.main_thread()
    outer = main and _depth == 0 and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if not main or (_depth == 0 and not outer):
        yield
        return
    if outer:
        _pending.clear()
        previous = signal.signal(signal.SIGINT, _hold_sigint)
    _depth += 1
    try:
        yield
    except BaseException as err:
        if outer and _pending.is_set() and not isinstance(err, KeyboardInterrupt):
            _pending.clear()
            raise KeyboardInterrupt from err  # Ctrl-C outranks the error: a caller may catch that one
        raise
    finally:
        _depth -= 1
        if outer:
            signal.signal(signal.SIGINT, previous)
    if outer:
        interrupt_point()


def interrupt_point() -> None:
    """Raise the KeyboardInterrupt held by ``deferred_interrupt`` now, if Ctrl-C was pressed (main
    thread only: the interrupt belongs to the main thread's work)."""
    if _pending.is_set() and threading.current_thread() is threading.main_thread():
        _pending.clear()
        raise KeyboardInterrupt


def _temp_prefix(name: str) -> str:
    """``.<name>.<pid>-<host>-``, with ``name`` shortened so the whole temporary name fits 255 bytes."""
    tail = f".{os.getpid()}-{_HOST}-"
    room = _NAME_MAX - 1 - len(tail.encode()) - 8 - len(".tmp")  # mkstemp adds 8 random characters
    encoded = name.encode()
    if len(encoded) > room:
        name = encoded[:room].decode(errors="ignore")
    return f".{name}{tail}"


@contextmanager
def atomic_write(path):
    """Yield a temporary file name beside ``path``; on success rename it to ``path`` (module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with deferred_interrupt():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=".tmp")
        os.close(fd)
        try:
            yield tmp
            interrupt_point()
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp made it 0600; give it a normal file's mode
            interrupt_point()
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``atomic_write``)."""
    with atomic_write(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def is_stale_temporary(path, now: float | None = None) -> bool:
    """True if ``path`` is an ``atomic_write`` temporary whose writer is provably gone (module docstring)."""
    path = Path(path)
    m = _TEMP_RE.match(path.name)
    if m is None:
        return False
    if m["pid"] is not None and m["host"] == _HOST:
        return not _pid_alive(int(m["pid"]))
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age >= STALE_AGE_S


def remove_stale_temporaries(folder, target_prefix: str = "") -> list[Path]:
    """Delete the abandoned ``atomic_write`` temporaries in ``folder`` (not its subfolders) whose target
    name starts with ``target_prefix``; return their paths.

    Files that vanish or cannot be removed meanwhile are skipped: another cleaner may be at work.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith("." + target_prefix) and entry.name.endswith(".tmp") \
                and entry.is_file(follow_symlinks=False) and is_stale_temporary(entry.path):
            try:
                os.remove(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed
