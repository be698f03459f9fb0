"""Process set-up shared by the ``python -m alw_ref.<command>`` entry points (standard library only, so it
can run before the commands import NumPy, Numba and h5py, which takes 1–2 s)."""

import os
import signal
import sys

_COMMAND = ["alw_ref"]


def _exit_130(signum, frame):
    sys.stderr.write(f"{_COMMAND[0]}: interrupted\n")
    sys.stderr.flush()
    os._exit(130)              # nothing is open or half-written while modules import


class _StdoutUntilClosed:
    """sys.stdout that drops its output once the reader has gone (``… | head``) instead of raising
    BrokenPipeError into the command, which then finishes its work and writes its files."""

    def __init__(self, stream):
        self._stream = stream
        self._gone = False

    def _call(self, method, *args):
        if not self._gone:
            try:
                return getattr(self._stream, method)(*args)
            except BrokenPipeError:
                self._gone = True           # and the interpreter's last flush must not fail either:
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        return len(args[0]) if args else None

    def write(self, text):
        return self._call("write", text)

    def flush(self):
        return self._call("flush")

    def __getattr__(self, name):
        return getattr(self._stream, name)


def prepare_command(command: str) -> None:
    """For ``python -m alw_ref.<command>``, called before its imports. Until ``main`` calls
    ``interrupts_raise``, Ctrl-C ends the process with "<command>: interrupted" and status 130, as it does
    later, instead of the traceback of whichever import it hit (a SIGINT that is ignored, as under nohup, or
    handled by someone else is left alone). Output to a reader that goes away is dropped, not an error."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _COMMAND[0] = command
        signal.signal(signal.SIGINT, _exit_130)
    if sys.stdout is not None and not isinstance(sys.stdout, _StdoutUntilClosed):
        sys.stdout = _StdoutUntilClosed(sys.stdout)


def interrupts_raise() -> None:
    """Undo the Ctrl-C part of ``prepare_command``: Ctrl-C raises KeyboardInterrupt again (the commands'
    ``main`` turn it into one line and status 130 after leaving their files consistent)."""
    if signal.getsignal(signal.SIGINT) is _exit_130:
        signal.signal(signal.SIGINT, signal.default_int_handler)
