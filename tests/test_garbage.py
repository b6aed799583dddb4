"""digitlab.garbage: no collections while a command imports, collections as usual once its first
run starts, with what the imports left alive frozen."""

from __future__ import annotations

import gc
import subprocess
import sys

from conftest import ROOT

from digitlab import garbage


def test_resume_freezes_what_is_alive_and_collects_again():
    assert gc.isenabled()
    try:
        garbage.hold()
        assert not gc.isenabled()
        kept = [[] for _ in range(1000)]  # alive at the resume: frozen
        frozen_before = gc.get_freeze_count()
        garbage.resume()
        assert gc.isenabled() and gc.get_freeze_count() >= frozen_before + len(kept)
        frozen = gc.get_freeze_count()
        garbage.resume()  # not held: nothing to do
        assert gc.get_freeze_count() == frozen
        cycle = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # what is made after the resume is collected
    finally:
        gc.enable()
        gc.unfreeze()


def test_the_imports_of_a_block_are_frozen_after_it_even_when_it_fails():
    try:
        try:
            with garbage.imports_held():
                assert not gc.isenabled()
                raise ImportError("a module that is not there")
        except ImportError:
            pass
        assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def _probe(tmp_path, *overrides: str) -> dict:
    """train.py run as a user runs it, with the collector's state read where it matters."""
    probe = f"""
import gc, runpy, sys
sys.argv = ["train.py", *{list(overrides)!r}, "hydra.run.dir={tmp_path / 'run'}"]
import digitlab.cli as cli, digitlab.runner as runner, digitlab.tracking.tracker as tracker
seen = {{}}
check, run, done, open_run = cli.preflight, runner.run, cli.exit_now, tracker.MlflowTracker.run
def preflight_seen(*args, **kwargs):
    seen["composing"] = gc.isenabled()
    return check(*args, **kwargs)
def run_seen(*args, **kwargs):
    seen["running"], seen["frozen"] = gc.isenabled(), gc.get_freeze_count()
    return run(*args, **kwargs)
def open_run_seen(*args, **kwargs):
    opened = open_run(*args, **kwargs)
    seen["frozen_with_mlflow"] = gc.get_freeze_count()
    return opened
def exit_seen(code):
    print("SEEN", seen)
    done(code)
cli.preflight, runner.run, cli.exit_now = preflight_seen, run_seen, exit_seen
tracker.MlflowTracker.run = open_run_seen
runpy.run_path({str(ROOT / "pipelines" / "train.py")!r}, run_name="__main__")
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return eval(done.stdout.split("SEEN ", 1)[1].splitlines()[0])


def test_a_training_command_imports_without_collections_and_runs_with_them(tmp_path):
    seen = _probe(tmp_path, "trainer.epochs=1", "tracking=off")
    assert seen["composing"] is False and seen["running"] is True
    assert seen["frozen"] > 50_000  # Hydra's, NumPy's and the pipeline's objects, frozen


def test_a_tracked_run_imports_mlflow_without_collections(tmp_path):
    uri = f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"
    made = subprocess.run([sys.executable, str(ROOT / "pipelines" / "train.py"),
                           "trainer.epochs=1", uri, f"hydra.run.dir={tmp_path / 'first'}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    # a ready store is opened with sqlite3 alone: MLflow is first imported as the run opens
    seen = _probe(tmp_path, "trainer.epochs=1", "seed=1", uri)
    assert seen["running"] is True
    assert seen["frozen_with_mlflow"] > seen["frozen"] + 100_000  # MLflow's, frozen too
