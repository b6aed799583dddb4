"""digitlab: a from-scratch NumPy backprop network for handwritten digits, as a research pipeline."""

import os

# OpenBLAS's idle threads spin for a long time before they sleep; on 2 vCPUs that share a core
# the spinning thread slows the main thread's elementwise work between two products, and two
# threads trained 2.5–20× slower than one. Sleeping at once (2^4 cycles) makes two threads the
# faster choice (benchmarks/NOTES.md § 6). Read when NumPy loads OpenBLAS: it only takes effect
# if digitlab is imported before NumPy, as the pipelines and benchmarks do.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
