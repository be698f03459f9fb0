"""Errors raised by alw_ref.

Every error a user can cause names the culprit: the structure (index and name), the field and
what is wrong, e.g. ``structure 17 ('Mo/AIMD-NVT/3'): field 'positions': atoms 4 and 9 are
0.03 Å apart (minimum 0.1 Å)``. Nothing a user can cause is checked with ``assert``.
"""


class ALWError(Exception):
    """Base class of every error alw_ref raises on purpose."""


class DataError(ALWError, ValueError):
    """Input data (a structure, a dataset file, a converted file) is malformed."""


class SpecError(ALWError, ValueError):
    """A descriptor specification is inconsistent, or does not cover an element in the data."""


class MissingDependencyError(ALWError, ImportError):
    """An optional extra (e.g. ``ase``) is needed for this feature but not installed."""


class ModelError(ALWError, ValueError):
    """A model file is damaged, from another format version, or does not fit the data."""


def _exit_130(signum, frame):
    import os
    import sys

    sys.stderr.write(f"{_COMMAND[0]}: interrupted\n")
    sys.stderr.flush()
    os._exit(130)              # nothing is open or half-written while modules import


_COMMAND = ["alw_ref"]


def quiet_interrupt_while_importing(command: str) -> None:
    """For ``python -m alw_ref.<command>``, called before its imports (NumPy, Numba, h5py: 1–2 s): until
    ``main`` calls ``interrupts_raise``, Ctrl-C ends the process with "<command>: interrupted" and status 130,
    as it does later, instead of the traceback of whichever import it hit. A SIGINT that is ignored (nohup)
    or handled by someone else is left alone."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _COMMAND[0] = command
        signal.signal(signal.SIGINT, _exit_130)


def interrupts_raise() -> None:
    """Undo ``quiet_interrupt_while_importing``: Ctrl-C raises KeyboardInterrupt again (the commands' ``main``
    turn it into one line and status 130, after leaving their files consistent)."""
    import signal

    if signal.getsignal(signal.SIGINT) is _exit_130:
        signal.signal(signal.SIGINT, signal.default_int_handler)
