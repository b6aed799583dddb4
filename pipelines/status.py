"""The store at a glance: experiments, their runs by status, and stale runs (RUNNING, but their
process on this host is gone).

    python pipelines/status.py
    python pipelines/status.py reap=true     # mark the stale runs KILLED
"""

from digitlab import cli
from digitlab.cli import status

if __name__ == "__main__":
    cli.command("status", status.run)
