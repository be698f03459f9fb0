"""alw_ref — reference Behler–Parrinello neural-network potential trained on energies, forces and
Cauchy stress with adaptive loss weighting (SoftAdapt).

Data flow, one module per step: ``data`` (dataset.h5) → ``neighbors`` (periodic neighbour list) →
``acsf_spec`` / ``acsf`` (descriptor set; ACSF descriptors and
their derivatives) → ``describe`` (whole-dataset driver and cache) →
``mlp`` / ``forces`` / ``model`` (energy Eq. 1, forces Eq. 2, stress Eq. 3, exact ∂L/∂θ) → ``loss``
(Eq. 4) → ``weighting`` (SoftAdapt Eqs. 6–7 and baselines) → ``optim`` (Adam) → ``train`` (CLI);
``potential`` and ``ase`` use a trained model.
Importing ``alw_ref`` compiles nothing and prints nothing: the Numba kernels compile (or load from
their on-disk cache) on first call. Numba keeps that cache in the package's ``__pycache__`` or else
in ``~/.cache/numba``; when neither is writable (a read-only install and home), importing
``alw_ref`` points ``NUMBA_CACHE_DIR`` at ``<tmp>/alw_ref-numba-<uid>`` (a private folder, mode
0700) instead of letting the first ``@njit(cache=True)`` fail with "no locator available". A
``NUMBA_CACHE_DIR`` set by the user is always kept.

Units everywhere: energy eV, length Å, force eV/Å, stress eV/Å³ (ASE sign, Voigt xx yy zz yz xz xy).
"""

import os as _os
import sys as _sys
import tempfile as _tempfile

__version__ = "0.1.0"


def _writable_folder(path: str) -> bool:
    """Numba's own test of a cache folder: it can be created and a file made in it."""
    try:
        _os.makedirs(path, exist_ok=True)
        _tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _private_folder(path: str) -> bool:
    """``path`` is (made) a folder of this user that no one else can write (Numba's cache holds pickles)."""
    try:
        _os.makedirs(path, mode=0o700, exist_ok=True)
        st = _os.stat(path)
    except OSError:
        return False
    return st.st_uid == _os.getuid() and not st.st_mode & 0o022 and _writable_folder(path)


def _numba_cache_fallback() -> None:
    """Set NUMBA_CACHE_DIR when Numba's in-tree and user-wide cache folders are both unwritable."""
    if _os.environ.get("NUMBA_CACHE_DIR") or not hasattr(_os, "getuid"):
        return
    in_tree = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "__pycache__")
    user_wide = _os.path.join(_os.environ.get("XDG_CACHE_HOME") or _os.path.expanduser("~/.cache"), "numba")
    if _writable_folder(in_tree) or _writable_folder(user_wide):
        return
    folder = _os.path.join(_tempfile.gettempdir(), f"alw_ref-numba-{_os.getuid()}")
    if not _private_folder(folder):
        try:
            folder = _tempfile.mkdtemp(prefix="alw_ref-numba-")  # fresh and private, used by this process only
        except OSError:
            return  # nothing writable at all: Numba's own error says so
    _os.environ["NUMBA_CACHE_DIR"] = folder
    config = _sys.modules.get("numba.core.config")
    if config is not None:  # Numba imported before alw_ref: it read the environment already
        config.CACHE_DIR = folder


_numba_cache_fallback()
