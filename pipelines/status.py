"""The store at a glance: experiments, their runs by status, and stale runs (RUNNING, but their
process on this host is gone), which it then marks KILLED as every command that opens the store
does.

    python pipelines/status.py
    python pipelines/status.py reap=false    # only show the stale runs
"""

import digitlab

if __name__ == "__main__":
    digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads
    from digitlab import cli
    from digitlab.cli import status

    cli.command("status", status.run)
