"""digitlab: a from-scratch NumPy backprop network for handwritten digits, as a research pipeline."""

import os
import sys

# OpenBLAS's idle threads spin for a long time before they sleep; on 2 vCPUs that share a core
# the spinning thread slows the main thread's elementwise work between two products, and two
# threads trained 2.5–20× slower than one. Sleeping at once (2^4 cycles) makes two threads the
# faster choice (benchmarks/NOTES.md § 6). OpenBLAS reads the variable when NumPy loads it, so
# an entry point (the pipelines, the benchmarks) calls prepare_blas() before importing NumPy.
# What a process that imported NumPy before digitlab loaded OpenBLAS with (read, not written):
_NUMPY_FIRST = "numpy" in sys.modules
_PRESET = os.environ.get("OPENBLAS_THREAD_TIMEOUT")


def prepare_blas() -> None:
    """OPENBLAS_THREAD_TIMEOUT=4 where the user has not set it and NumPy is not loaded yet."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


def idle_blas_threads_sleep() -> bool:
    """Whether OpenBLAS's idle threads sleep at once in this process (a timeout of 2^4 cycles,
    its minimum): only then do extra BLAS threads pay in the mini-batch loop."""
    value = _PRESET if _NUMPY_FIRST else os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    return value is not None and value.strip().isdigit() and int(value) <= 4


__version__ = "0.1.0"
