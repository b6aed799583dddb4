"""What a run shows while it trains: the classifier's row reports (which change no result) and
the command's plain lines when its output is not a terminal."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from digitlab.cli import job
from digitlab.config import RunConfig, TrainerConfig
from digitlab.nn import LoopSettings, NetworkSettings, OptimizerSettings
from digitlab.nn.classifier import Classifier
from digitlab.training import EpochRecord


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x / 16.0, y


@pytest.mark.parametrize("batch_size,engine", [(1, "auto"), (1, "reference"), (10, "auto"),
                                               (200, "auto")])
def test_row_reports_change_no_bit_of_the_run(digits, batch_size, engine):
    x, y = digits
    runs = []
    for report in (False, True):
        clf = Classifier(NetworkSettings(hidden=[32]), OptimizerSettings(lr=0.1),
                         LoopSettings(epochs=2, batch_size=batch_size, engine=engine), seed=3)
        seen: list[tuple[int, int]] = []
        if report:
            clf.on_rows = lambda done, total, seen=seen: seen.append((done, total))
        clf.fit(x, y)
        runs.append((clf.pass_loss_, clf.pass_accuracy_, clf.network.state(), seen))
    (loss, accuracy, state, _), (loss2, accuracy2, state2, seen) = runs
    assert (loss, accuracy) == (loss2, accuracy2)  # the cost summed in the same order
    for key in state:
        np.testing.assert_array_equal(state[key], state2[key])
    done = [d for d, _ in seen]
    assert {t for _, t in seen} == {len(y)} and done.count(len(y)) == 2  # each pass ends at n
    batches = -(-len(y) // batch_size)
    assert 2 * min(batches, 10) <= len(seen) <= 2 * 101  # ≤ 101 reports a pass, not one a row


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_single_run_prints_its_steps_and_a_line_for_a_long_pass(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(job.time, "monotonic", clock)
    shown = job._progress(RunConfig(trainer=TrainerConfig(epochs=2)), multirun=False)
    with shown:
        assert shown.bar.disable  # pytest's captured output is not a terminal
        shown.step("reading digits")
        shown.step("training on 50000 rows, 2 epoch(s) at most")
        clock.now = 4.0
        shown.rows(10000, 50000)  # 4 s into the pass: too soon for a line
        clock.now = 12.0
        shown.rows(30000, 50000)
        clock.now = 15.0
        shown.rows(35000, 50000)  # 3 s after the last line
        shown.epoch(EpochRecord(1, 0.5, 0.9, None, None, 0.1, 15.0, improved=True))
        shown.step("evaluating and recording the run")
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["reading digits …", "training on 50000 rows, 2 epoch(s) at most …",
                         "epoch 1/2: 30,000 of 50,000 rows (60%), 12 s"]
    assert lines[3].startswith("epoch 1/2  train_loss=0.5")
    assert lines[4:] == ["evaluating and recording the run …"]


def test_a_sweep_job_prints_none_of_it(capsys):
    shown = job._progress(RunConfig(trainer=TrainerConfig(epochs=1)), multirun=True)
    with shown:
        shown.step("reading digits")
        shown.rows(10, 20)
        shown.epoch(EpochRecord(1, 0.5, 0.9, None, None, 0.1, 1.0, improved=True))
    assert capsys.readouterr().out == ""  # the job's log file has them; the sweep, a line a run


def test_the_libraries_info_lines_are_not_shown():
    """Alembic's INFO lines (MLflow's schema migrator: "setup plugin alembic.autogenerate.…"
    when a command first checks a store) say nothing a user acts on; the commands log INFO."""
    code = ("import logging; logging.basicConfig(level=logging.INFO); "
            "import digitlab.cli.project as p; p.prepare_process(); import alembic.autogenerate")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "setup plugin" not in done.stderr + done.stdout


def test_a_sweeps_count_is_its_own_and_says_failures_and_skips(tmp_path):
    from digitlab.cli import sweep

    old = sweep.Sweep(tmp_path, ["seed"], 3, token="old", started=0.0)
    assert sweep.progress(old, "FINISHED").startswith("[1/3, ≈")
    new = sweep.Sweep(tmp_path, ["seed"], 3, token="new", started=time.time())
    lines = [sweep.progress(new, s) for s in ("SKIPPED", "FAILED", "FINISHED")]
    assert lines[0].startswith("[1/3, 1 skipped, ≈")  # the earlier sweep's job is not counted
    assert lines[1].startswith("[2/3, 1 failed, 1 skipped, ≈")
    assert lines[2] == "[3/3, 1 failed, 1 skipped] "


def test_a_count_that_cannot_be_written_costs_the_count_not_the_job(tmp_path):
    from digitlab.cli import sweep

    # as a full disk or a deleted sweep folder would fail it
    gone = sweep.Sweep(tmp_path / "removed", ["seed"], 3, started=time.time())
    assert sweep.progress(gone, "FAILED").startswith("[1/3, 1 failed, ≈")


def test_a_sweep_whose_jobs_left_no_outcome_never_exits_0(tmp_path, capsys):
    from digitlab.cli import sweep

    empty = sweep.Sweep(tmp_path, ["seed"], 3)
    assert sweep.finish_sweep(empty, started=True, interrupted=False) == 1
    assert "no job of the sweep" in capsys.readouterr().err
    sweep.write_outcome(tmp_path / "0", {"job": 0, "name": "seed=0", "status": "FINISHED",
                                         "sweep": empty.token})
    assert sweep.finish_sweep(empty, started=True, interrupted=False) == 0
