"""Test-session setup: NumPy's BLAS on one thread (set before NumPy is first imported).

The networks' matrices are small, and BLAS threads compete with Numba's on a 2-core machine
(benchmarks/bench_train.py measured 2-3.7x slower epochs); the test suite runs faster without them.
An explicit OPENBLAS_NUM_THREADS in the environment wins.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
