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

