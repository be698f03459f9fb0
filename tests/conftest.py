"""Test-session setup: NumPy's BLAS on one thread (set before NumPy is first imported).

The networks' matrices are small, and BLAS threads compete with Numba's on a 2-core machine
(benchmarks/bench_train.py measured 2-3.7x slower epochs); the test suite runs faster without them.
An explicit OPENBLAS_NUM_THREADS in the environment wins.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _python_sigint_handler():
    """Ctrl-C tests need Python's own SIGINT handler: a shell that starts pytest in the background (nohup,
    `&` in a script, some CI runners) leaves SIGINT ignored, which child processes also inherit."""
    import signal

    saved = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, saved)
