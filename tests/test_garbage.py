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


def test_a_training_command_imports_without_collections_and_runs_with_them(tmp_path):
    # the command as a user runs it, with the collector's state read where it matters
    probe = f"""
import gc, runpy, sys
sys.argv = ["train.py", "trainer.epochs=1", "tracking=off", "hydra.run.dir={tmp_path / 'run'}"]
import digitlab.cli as cli, digitlab.runner as runner
seen = {{}}
check, run, done = cli.preflight, runner.run, cli.exit_now
def preflight_seen(*args, **kwargs):
    seen["composing"] = gc.isenabled()
    return check(*args, **kwargs)
def run_seen(*args, **kwargs):
    seen["running"], seen["frozen"] = gc.isenabled(), gc.get_freeze_count()
    return run(*args, **kwargs)
def exit_seen(code):
    print("SEEN", seen)
    done(code)
cli.preflight, runner.run, cli.exit_now = preflight_seen, run_seen, exit_seen
runpy.run_path({str(ROOT / "pipelines" / "train.py")!r}, run_name="__main__")
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = eval(done.stdout.split("SEEN ", 1)[1].splitlines()[0])
    assert seen["composing"] is False and seen["running"] is True
    assert seen["frozen"] > 50_000  # Hydra's, NumPy's and the pipeline's objects, frozen
