"""The store at a glance: experiments, their runs by status, and stale runs (RUNNING, but their
process on this host is gone), which it then marks KILLED as every command that opens the store
does.

    python pipelines/status.py
    python pipelines/status.py reap=false    # only show the stale runs
"""

from digitlab import cli
from digitlab.cli import status

if __name__ == "__main__":
    cli.command("status", status.run)
