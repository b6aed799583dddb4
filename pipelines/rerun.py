"""Re-run a logged run from its logged config.yaml and check that it comes out the same.

    python pipelines/rerun.py run_id=<id>

Refuses (exit 2) when the data's digest differs from the logged one; warns when the code's
commit differs or the logged tree was dirty. The new run is tagged digitlab.rerun_of=<id>.
Compares the final and best weights bit for bit, then every logged metric but timings, and
prints one of: "reproduced exactly" (exit 0); "reproduced: weights bit-identical; k logged
metric value(s) differ by at most r (relative)" (exit 3); "NOT reproduced: the weights differ"
with the largest difference and the first metric to differ (exit 1).
"""

import digitlab

if __name__ == "__main__":
    digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads
    from digitlab import cli
    from digitlab.cli import rerun

    cli.command("rerun", rerun.run)
