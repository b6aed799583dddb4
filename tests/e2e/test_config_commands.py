"""End-to-end tests of test_config.py's subject: each runs a real command."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("imports,preset,timeout,auto_threads", [
    ("import digitlab", None, "4", None),  # idle threads sleep at once: every core
    ("import digitlab", "12", "12", 1),  # a user's value stays, and they spin: one thread
    ("import numpy, digitlab", None, None, 1),  # too late to set it: one thread
])
def test_auto_threads_follow_what_openblas_was_loaded_with(imports, preset, timeout, auto_threads):
    import os
    import subprocess
    import sys

    # as an entry point starts: OpenBLAS's settings, then the rest
    code = (f"{imports}, os; digitlab.prepare_blas(); from digitlab.config import TrainerConfig; "
            "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), "
            "TrainerConfig(batch_size=10).loop_threads())")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if preset:
        env["OPENBLAS_THREAD_TIMEOUT"] = preset
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stdout.split() == [str(timeout), str(auto_threads)], done.stderr[-2000:]
