"""Bad input to every command: one line on stderr, exit 2, nothing written — and the machine's
faults (a full disk, a store deleted under a sweep) told the same way."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ROOT, client, pipeline, pipeline_process, runs_of, store, write_idx_set


@pytest.fixture
def swept(digits_sweep):
    """The session's digits sweep: its store, its parent run and a run of it with its model."""
    return digits_sweep.uri, digits_sweep.parent.info.run_id, digits_sweep.children[0].info.run_id


def _one_line(done, message):
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "INFO" not in line]
    assert len(lines) == 1 and lines[0].startswith("digitlab: error: "), done.stderr[-3000:]
    assert message in lines[0], lines[0]


BAD_INPUTS = [
    (["reproduce.py", "seeds=0"], "seeds=0: give the number of training runs per experiment"),
    (["reproduce.py", "seeds=-2"], "seeds=-2: give the number of training runs"),
    (["reproduce.py", "n_jobs=0"], "n_jobs=0: give the number of parallel jobs"),
    (["compare.py", "sweep=deadbeef"], "sweep=deadbeef: no such run in"),
    (["register.py", "sweep=deadbeef"], "sweep=deadbeef: no such run in"),
    (["compare.py", "sweep={child}"], "is not the parent run of a sweep, search or"),
    (["register.py", "name=a/b"], "name='a/b': a registered model's name"),
    (["register.py", "alias=v2"], "alias='v2': an alias is letters"),
    (["rerun.py", "run_id={parent}"], "is a parent run"),
    (["predict.py", "input={tmp}", "model_uri=runs:/{child}/model"], "input={tmp}: a folder"),
    (["predict.py", "input={tmp}/fifo", "model_uri=runs:/{child}/model"],
     "input={tmp}/fifo: not a regular file"),
    (["predict.py", "input={tmp}/wide.csv", "output={tmp}", "model_uri=runs:/{child}/model"],
     "output={tmp}: a folder"),
    (["predict.py", "input={tmp}/wide.csv", "model_uri=runs:/{child}/model"],
     "pixels must be raw values in 0–16, as the model was trained on; found 0–255"),
    (["export_kaggle_csv.py", "out={tmp}", "mnist_root={tmp}"], "out={tmp}: a folder"),
    (["status.py", "reap=maybe"], "reap=maybe: expected true or false; give reap= such a value"),
    (["search.py", "sampler=cmaes", "storage=sqlite:///{tmp}/optuna.db"],
     "sampler='cmaes': use one of tpe, random, grid"),
]
# the first case of each command runs as a user runs it, an interpreter of its own: the exit code
# and the one line are the process's; the others are the same code path, run in this process
AS_A_PROCESS = {next(i for i, (args, _) in enumerate(BAD_INPUTS) if args[0] == script)
                for script in {args[0] for args, _ in BAD_INPUTS}}


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)),
                         ids=[" ".join(args) for args, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(swept, tmp_path, case):
    args, message = BAD_INPUTS[case]
    uri, parent, child = swept
    os.mkfifo(tmp_path / "fifo")
    pixels = ",".join(f"pixel{i}" for i in range(64))
    (tmp_path / "wide.csv").write_text(pixels + "\n" + ",".join(["255"] + ["0"] * 63) + "\n")
    before = {r.info.run_id for r in runs_of(uri)} | {
        r.info.run_id for r in runs_of(uri, "reproduce")}
    fill = {"parent": parent, "child": child, "tmp": tmp_path}
    store_key = [] if args[0] == "export_kaggle_csv.py" else [f"tracking.uri={uri}"]
    run = pipeline_process if case in AS_A_PROCESS else pipeline
    done = run(args[0], *(a.format(**fill) for a in args[1:]), *store_key, cwd=tmp_path)
    _one_line(done, message.format(**fill))
    after = {r.info.run_id for r in runs_of(uri)} | {
        r.info.run_id for r in runs_of(uri, "reproduce")}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "wide.csv"]


@contextmanager
def _full_disk(folder: Path):
    """A tmpfs on `folder` with no space left (root only: CI and these machines run as root)."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        try:
            (folder / "filler").write_bytes(b"\0" * 2_000_000)
        except OSError:
            pass  # full
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_leaves_no_output_cut_short_and_no_store_half_made(swept, tmp_path):
    uri, _, _ = swept
    mnist = write_idx_set(tmp_path / "mnist")
    with _full_disk(tmp_path / "full") as full:
        done = pipeline("compare.py", f"out={full / 'reports'}", f"tracking.uri={uri}",
                        cwd=tmp_path)
        _one_line(done, "cannot write it (No space left on device)")
        done = pipeline("export_kaggle_csv.py", f"mnist_root={mnist}", "rows=100",
                        f"out={full / 'train.csv'}", cwd=tmp_path)
        _one_line(done, f"out={full / 'train.csv'}: cannot write it (No space left on device)")
        done = pipeline("train.py", "trainer.epochs=1",
                        f"tracking.uri=sqlite:///{full / 'mlruns' / 'mlflow.db'}", cwd=tmp_path)
        _one_line(done, "cannot create the store (database or disk is full)")
        left = sorted(str(p.relative_to(full)) for p in full.rglob("*") if p.is_file())
        assert left == ["filler", "mlruns/mlflow.db.lock"], left  # no table.csv, no partial
        table = [p for p in full.rglob("table.csv")]
        assert table == []


def test_a_store_deleted_during_a_sweep_fails_its_jobs_in_one_line_each(tmp_path):
    uri = store(tmp_path)
    db = tmp_path / "mlruns" / "mlflow.db"
    log = tmp_path / "sweep.err"
    with open(log, "w") as err:
        sweep = subprocess.Popen(
            [sys.executable, str(ROOT / "pipelines" / "train.py"),
             "-m", "seed=0,1,2,3", "trainer.epochs=40", "tracking.log_model=false",
             f"tracking.uri={uri}"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"})
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and sweep.poll() is None and not list(tmp_path.glob(
                "outputs/sweeps/*/*/0/digitlab_result.json")):
            time.sleep(0.2)
        db.unlink()  # the store's file deleted while the sweep runs
        out, _ = sweep.communicate(timeout=600)
    errors = log.read_text()
    assert sweep.returncode == 1, errors[-3000:]
    assert "Traceback" not in errors and "[SQL:" not in errors, errors[-3000:]
    failed = [line for line in errors.splitlines() if line.startswith("FAILED job")]
    assert len(failed) == 3 and all("was deleted or emptied while the command ran" in line
                                    for line in failed), errors[-3000:]
    assert sum("not run:" in line for line in failed) >= 2
    assert not db.exists() or db.stat().st_size == 0 or runs_of(uri) == []


def test_a_sweep_numbers_its_seeds_by_job_and_keeps_the_command_that_reruns_it(tmp_path):
    uri = store(tmp_path)
    done = pipeline("train.py", "-m", "seed=${hydra:job.num}", "model.hidden=8,16",
                    "trainer.epochs=1", "tracking.log_model=false", "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = runs_of(uri)
    children = {r.data.params["model.hidden"]: r.data.params["seed"] for r in runs
                if "mlflow.parentRunId" in r.data.tags}
    assert children == {"8": "0", "16": "1"}
    parent = next(r for r in runs if "digitlab.jobs" in r.data.tags)
    assert parent.data.tags["digitlab.command"] == (
        "python pipelines/train.py -m 'seed=${hydra:job.num}' model.hidden=8,16 "
        f"trainer.epochs=1 tracking.log_model=false tracking.uri={uri} hydra/launcher=joblib "
        "hydra.launcher.n_jobs=2")
    report = pipeline("compare.py", "format=html", f"out={tmp_path / 'reports'}",
                      f"tracking.uri={uri}", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    page = next((tmp_path / "reports").rglob("report.html")).read_text()
    assert "hydra/launcher=joblib hydra.launcher.n_jobs=2" in page
    assert client(uri).get_run(parent.info.run_id).info.status == "FINISHED"


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hard link"])
def test_an_output_never_replaces_the_input_it_reads(tmp_path, spelling):
    """predict.py's output= naming its input= file, however spelled: one line, exit 2, the
    input untouched (before any model is loaded)."""
    source = tmp_path / "pixels.csv"
    source.write_text("pixel0,pixel1\n0,1\n")
    output = {"same": str(source), "relative": "./sub/../pixels.csv",
              "symlink": str(tmp_path / "link.csv"), "hard link": str(tmp_path / "hard.csv")}
    if spelling == "symlink":
        (tmp_path / "link.csv").symlink_to(source)
    if spelling == "hard link":
        os.link(source, tmp_path / "hard.csv")
    (tmp_path / "sub").mkdir()
    done = pipeline("predict.py", f"input={source}", f"output={output[spelling]}",
                    "model_uri=models:/nothing@here", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "that is the file this command reads" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert source.read_text() == "pixel0,pixel1\n0,1\n"


@pytest.mark.parametrize("script,arg,fragment", [
    ("train.py", "optim.lŕ=0.1", "optim.lŕ=0.1: no such key, so it would change nothing (did you "
                                 "mean optim.lr?)"),
    ("train.py", "tráiner.epochs=2", "no such key"),
    ("compare.py", "ălpha=0.1", "(did you mean alpha?)"),
])
def test_a_key_hydra_cannot_read_is_no_such_key(tmp_path, script, arg, fragment):
    """A non-ASCII letter in a key: the key is unknown, not a value to quote."""
    done = pipeline(script, arg, "tracking=off" if script == "train.py" else "all_runs=false",
                    cwd=tmp_path)
    assert done.returncode == 2 and fragment in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "quoted" not in done.stderr
