"""Compare runs: a sweep (default: the latest in the store), a reproduce run, a search study,
or every run of an experiment.

    python pipelines/compare.py
    python pipelines/compare.py sweep=<parent run id> out=reports
    python pipelines/compare.py format=html [ui_url=http://127.0.0.1:5000]
    python pipelines/compare.py all_runs=true tracking.experiment=digitlab-digits

format=files prints the table sorted by validation accuracy and writes it as CSV and Markdown
with two figures (accuracy against hidden size per learning rate; learning curves of the best
runs); format=html writes one self-contained report.html (digitlab.report). Either is logged to
the parent run under compare/.
"""

import digitlab

if __name__ == "__main__":
    digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads
    from digitlab import cli
    from digitlab.cli import compare

    cli.command("compare", compare.run)
