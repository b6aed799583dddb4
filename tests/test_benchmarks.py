"""The command benchmark's pieces: the typical script does what it is said to do, the sweep it
times is make run's, and its table computes the ratios the targets are written in."""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys

from conftest import ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("bench_commands",
                                                  ROOT / "benchmarks" / "bench_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_timed_sweep_is_make_runs():
    line = next(line for line in (ROOT / "Makefile").read_text().splitlines()
                if "pipelines/train.py -m" in line)
    assert shlex.split(line)[2:] == _bench().MAKE_RUN_SWEEP


def test_the_table_divides_by_the_named_reference(tmp_path, monkeypatch):
    bench = _bench()
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results.md")
    medians = {bench.REFERENCE: 4.0, "one run": 3.0, "status.py": 1.6,
               "16 Fashion jobs, sequential": 10.0, "16 Fashion jobs, joblib n_jobs=2": 7.0,
               "one run, tracking=off": 2.4, bench.JOBLIB_FLOOR: 6.5}
    scale = {"runs": 240, "seconds": 100.0, "first": 0.40, "last": 0.50, "store_kb": 32.0,
             "artifacts_kb": 190.0}
    text = bench.table(medians, {k: [v] for k, v in medians.items()}, 1, scale)
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in text.splitlines()}
    assert rows["one run"][2:5] == ["0.75", "≤ 0.8", "yes"]
    assert rows["status.py"][2:5] == ["0.40", "≤ 0.5", "yes"]
    assert rows["one run, tracking=off"][2:5] == ["0.60", "≤ 0.4", "no"]
    assert rows["16 Fashion jobs, joblib n_jobs=2"][2:5] == [
        "0.70 of 16 Fashion jobs, sequential", "—", "—"]  # shown, without a target
    scale_row = rows["240-run sweep, 1 epoch each"]
    assert "1.25 ×" in scale_row[2] and scale_row[3:5] == ["≤ 1.2", "no"]
    joblib_floor = f"{bench.JOBLIB_FLOOR} (a floor of 16 Fashion jobs, joblib n_jobs=2)"
    assert rows[joblib_floor][1:3] == ["6.50", "0.65 of 16 Fashion jobs, sequential"]
    assert "register.py" not in rows  # not measured: no row
    assert (tmp_path / "results.md").read_text().count("\n|") == 9  # header, rule, 7 rows


def test_timed_counts_the_cpu_seconds_of_the_process_and_its_children(tmp_path):
    busy = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time\\n"
            "end = time.process_time() + 0.4\\nwhile time.process_time() < end: pass'])\n"
            "end = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
            "child.wait()")
    cpu: list[float] = []
    wall = _bench().timed([sys.executable, "-c", busy], dict(os.environ), tmp_path, cpu)
    assert len(cpu) == 1 and cpu[0] >= 0.75  # both busy 0.4 s
    assert wall > 0.4
