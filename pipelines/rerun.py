"""Re-run a logged run from its logged config.yaml and check that it comes out the same.

    python pipelines/rerun.py run_id=<id>

Refuses (exit 2) when the data's digest differs from the logged one; warns when the code's
commit differs or the logged tree was dirty. The new run is tagged digitlab.rerun_of=<id>.
Prints "reproduced exactly" (weights bit for bit, every metric but timings; exit 0) or the first
metric and epoch that differ (exit 1).
"""

import digitlab

if __name__ == "__main__":
    digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads
    from digitlab import cli
    from digitlab.cli import rerun

    cli.command("rerun", rerun.run)
