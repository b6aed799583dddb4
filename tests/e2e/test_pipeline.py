"""The pipelines end to end, as a user runs them: real processes, real SQLite stores under
tmp_path, the embedded digits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import (
    ROOT,
    client,
    dead_pid,
    pipeline,
    pipeline_process,
    runs_of,
    store,
    sweep_digits_and_a_kaggle_csv,
    sweep_into,
    write_kaggle_csv,
)
from digitlab.config import NOT_TRAINED_BY

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def sweep(digits_sweep):
    """The session's 12-run digits sweep (conftest.DIGITS_SWEEP), with the pyfunc models."""
    return digits_sweep.folder, digits_sweep.uri, digits_sweep.done


CONFIGS = [(h, lr) for h in ("8", "16", "32") for lr in ("0.1", "0.5")]


def test_sweep_logs_one_child_run_per_job_under_a_parent(sweep):
    tmp, uri, done = sweep
    runs = runs_of(uri)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 12
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["digitlab.jobs"] == "12"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {(c.data.params["model.hidden"], c.data.params["optim.lr"], c.data.params["seed"])
            for c in children} == {(h, lr, s) for h, lr in CONFIGS for s in ("0", "1")}
    assert {c.info.run_name for c in children} == {
        f"hidden={h} lr={lr} seed={s}" for h, lr in CONFIGS for s in ("0", "1")}
    for c in children:
        assert c.info.status == "FINISHED"
        assert c.data.params["trainer.epochs"] == "4" and c.data.params["data.name"] == "digits"
        tags = c.data.tags
        for key in ("digitlab.config_hash", "digitlab.sweep_id", "digitlab.job",
                    "digitlab.overrides", "git.commit", "git.dirty", "data.sha256"):
            assert tags.get(key), key
        assert tags["digitlab.sweep_id"] == parent.info.run_id
        contexts = {i.tags[0].value for i in c.inputs.dataset_inputs}
        assert contexts == {"training", "validation", "test"}
    assert "12 finished, 0 skipped (already FINISHED), 0 failed" in done.stdout
    assert parent.info.run_name == "hidden×lr×seed, 12 runs"  # what it sweeps, not a timestamp
    # its page in the UI says where its comparison will be, before compare.py has run
    note = parent.data.tags["mlflow.note.content"]
    assert "compare/ in Artifacts" in note and f"sweep={parent.info.run_id}" in note
    assert f"tracking.uri={uri}" in note and "reused" not in note


def test_a_sweep_prints_a_line_a_run_and_keeps_its_epochs_in_the_job_logs(sweep):
    tmp, uri, done = sweep
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("hidden×lr×seed, 12 runs into ")  # before the store is opened
    runs = [line for line in lines if line.startswith("[")]
    assert [line.split("]")[0].split(",")[0] for line in runs] == [f"[{k}/12" for k in
                                                                   range(1, 13)]
    assert all("left]" in line for line in runs[:11]) and "best_val_accuracy=" in runs[0]
    assert not [line for line in lines if "epoch 1/4" in line or "INFO" in line
                or "[HYDRA]" in line], lines
    assert len(lines) <= 12 + 6 and "compare.py sweep=" in lines[-2]  # a line a run, and a few
    assert lines[-1].startswith("see its runs: ") and "runs?workflowType=machine_learning" in lines[-1]
    logs = list((tmp / "outputs" / "sweeps").rglob("train.log"))
    assert len(logs) == 12 and all("epoch 4/4" in log.read_text() for log in logs)


def test_a_sweeps_compare_hint_runs_as_pasted_on_its_own_store(sweep, tmp_path):
    """The sweep went into a store that is not the project's: the printed compare command names
    it, and runs from another folder with no virtual environment activated."""
    _, uri, done = sweep
    [line] = [x for x in done.stdout.splitlines() if x.startswith("compare its configs:")]
    assert f"tracking.uri={uri}" in line
    pasted = subprocess.run(line.split(":", 1)[1].strip() + " out=pasted", shell=True,
                            cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert pasted.returncode == 0, pasted.stderr[-2000:]
    assert "12 runs of" in pasted.stdout and (tmp_path / "pasted").is_dir()


def test_status_names_the_latest_sweep_and_links_its_runs(sweep, tmp_path):
    _, uri, _ = sweep
    done = pipeline("status.py", f"tracking.uri={uri}", "reap=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [x for x in done.stdout.splitlines() if x.startswith("the latest sweep, ")]
    assert "'hidden×lr×seed, 12 runs'" in line
    assert line.endswith("/runs?workflowType=machine_learning") and f"{uri}, then its /#/" in line


def _jobs(uri: str) -> list:
    return [r for r in runs_of(uri) if "mlflow.parentRunId" in r.data.tags]


def test_metric_histories_have_one_point_per_epoch(sweep):
    _, uri, _ = sweep
    c = client(uri)
    for run in _jobs(uri):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                    "epoch_seconds"):
            steps = [m.step for m in c.get_metric_history(run.info.run_id, key)]
            assert sorted(steps) == [1, 2, 3, 4], key
        for key in ("test_loss", "test_accuracy", "best_val_accuracy", "best_epoch",
                    "train_seconds"):
            assert key in run.data.metrics
        assert 0.5 < run.data.metrics["test_accuracy"] <= 1


def test_the_logged_model_carries_the_runs_final_metrics_once(sweep):
    _, uri, _ = sweep
    c = client(uri)
    for run in _jobs(uri):
        [model] = c.search_logged_models([run.info.experiment_id],
                                         filter_string=f"source_run_id = '{run.info.run_id}'")
        linked = {m.key: m.value for m in model.metrics}
        assert len(linked) == len(model.metrics)  # each once
        for key in ("test_loss", "test_accuracy", "best_val_accuracy", "best_epoch"):
            assert linked[key] == run.data.metrics[key], key
        assert not {"train_loss", "val_accuracy"} & set(linked)  # per-epoch: the run's own
        assert len(c.get_metric_history(run.info.run_id, "test_accuracy")) == 1


def test_every_artifact_is_present_and_loadable(sweep, tmp_path):
    import mlflow
    from PIL import Image

    _, uri, _ = sweep
    child = next(r for r in runs_of(uri) if "mlflow.parentRunId" in r.data.tags)
    mlflow.set_tracking_uri(uri)
    local = Path(mlflow.artifacts.download_artifacts(run_id=child.info.run_id,
                                                     dst_path=str(tmp_path)))
    for name in ("config.yaml", "hydra/config.yaml", "hydra/overrides.yaml",
                 "weights/final.npz", "weights/best.npz", "report/classification_report.json",
                 "report/classification_report.txt", "report/confusion_matrix.png",
                 "report/learning_curves.png"):
        assert (local / name).is_file(), name
    with np.load(local / "weights" / "final.npz", allow_pickle=False) as weights:
        assert weights["W1"].shape == (64, int(child.data.params["model.hidden"]))
        assert weights["W2"].shape[1] == 10
    report = json.loads((local / "report" / "classification_report.json").read_text())
    assert report["accuracy"] == pytest.approx(child.data.metrics["test_accuracy"])
    for png in ("confusion_matrix.png", "learning_curves.png"):
        assert Image.open(local / "report" / png).size[0] > 300


def test_pyfunc_model_predicts_like_the_library(sweep, tmp_path):
    import mlflow
    import yaml

    from digitlab.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainerConfig
    from digitlab.nn.network import Network
    from digitlab.runner import load_split

    _, uri, _ = sweep
    child = next(r for r in runs_of(uri) if "mlflow.parentRunId" in r.data.tags)
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{child.info.run_id}/model")
    folder = Path(mlflow.artifacts.download_artifacts(run_id=child.info.run_id,
                                                      dst_path=str(tmp_path)))
    logged = yaml.safe_load((folder / "config.yaml").read_text())
    cfg = RunConfig(data=DataConfig(**logged["data"]), model=ModelConfig(**logged["model"]),
                    optim=OptimConfig(**logged["optim"]), trainer=TrainerConfig(**logged["trainer"]),
                    seed=logged["seed"])
    split = load_split(cfg)
    with np.load(folder / "weights" / "final.npz", allow_pickle=False) as state:
        net = Network.from_state(dict(state), activation=cfg.model.activation,
                                 output=cfg.model.output, loss=cfg.model.loss)
    ours = split.classes[net.predict_proba(split.x_test).argmax(axis=1)]
    theirs = model.predict(split.raw_test)
    np.testing.assert_array_equal(theirs, ours)
    assert np.mean(theirs == split.y_test) == pytest.approx(child.data.metrics["test_accuracy"])
    # and through MLflow's own command line, from a CSV of raw pixels
    csv = tmp_path / "pixels.csv"
    np.savetxt(csv, split.raw_test[:25], fmt="%d", delimiter=",",
               header=",".join(f"pixel{i}" for i in range(64)), comments="")
    out = tmp_path / "predictions.json"
    done = subprocess.run([str(Path(sys.executable).parent / "mlflow"), "models", "predict",
                           "-m", f"runs:/{child.info.run_id}/model", "-i", str(csv), "-t", "csv",
                           "--env-manager", "local", "-o", str(out)],
                          env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(out.read_text())["predictions"] == ours[:25].tolist()


def test_compare_prints_exports_and_logs_the_table(sweep, tmp_path):
    _, uri, _ = sweep
    done = pipeline("compare.py", f"tracking.uri={uri}", "out=reports", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    parent = next(r for r in runs_of(uri) if "mlflow.parentRunId" not in r.data.tags)
    folder = tmp_path / "reports" / parent.info.run_id
    import pandas as pd

    runs = pd.read_csv(folder / "runs.csv")  # one row per run
    assert len(runs) == 12 and {"model.hidden", "seed", "best_val_accuracy",
                                "test_accuracy", "duration_s"} <= set(runs.columns)
    assert list(runs.best_val_accuracy) == sorted(runs.best_val_accuracy, reverse=True)
    table = pd.read_csv(folder / "table.csv")  # one row per config, its seeds grouped
    assert len(table) == 6 and table["n"].tolist() == [2] * 6
    assert list(table.best_val_accuracy_mean) == sorted(table.best_val_accuracy_mean,
                                                        reverse=True)
    assert (folder / "table.md").read_text().startswith("| config")
    assert "hidden=" in done.stdout
    logged = {a.path for a in client(uri).list_artifacts(parent.info.run_id, "compare")}
    assert {"compare/table.csv", "compare/table.md", "compare/runs.csv",
            "compare/accuracy_by_hidden.png", "compare/learning_curves_best.png"} <= logged


# slow (≈ 35 s alone on 2 cores, over a minute beside another test): eight joblib workers, each
# importing the project and MLflow at once, are what shows that a fresh store loses no run and the
# workers leave nothing behind at the fast exit
@pytest.mark.slow
def test_eight_parallel_joblib_jobs_on_a_fresh_store(tmp_path):
    uri = store(tmp_path)
    done = pipeline("train.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=8",
                    "seed=0,1,2,3,4,5,6,7", "trainer.epochs=2", "tracking.log_model=false",
                    f"tracking.uri={uri}", "tracking.experiment=parallel", cwd=tmp_path,
                    env={"PYTHONWARNINGS": ""})  # the resource trackers' warnings are shown
    assert done.returncode == 0, done.stderr[-3000:]
    # the workers were ended before the fast exit: no semaphore or folder was left to clean up
    assert "leaked" not in done.stderr
    runs = runs_of(uri, "parallel")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 8 and all(r.info.status == "FINISHED" for r in runs)
    assert sorted(int(r.data.params["seed"]) for r in children) == list(range(8))
    # blas_threads=auto is logged as what it meant: each job's share of the cores
    assert {r.data.params["trainer.blas_threads"] for r in children} == {"1"}
    assert runs_of(uri, "Default") == []  # nothing strayed into the Default experiment
    assert "Traceback" not in done.stderr


def test_a_failing_job_fails_alone_and_the_sweep_exits_non_zero(tmp_path):
    good = write_kaggle_csv(tmp_path / "good.csv", n=200)
    bad = write_kaggle_csv(tmp_path / "bad.csv", n=200)
    lines = bad.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",300"
    bad.write_text("\n".join(lines) + "\n")
    uri = store(tmp_path)
    done = pipeline("train.py", "-m", "data=kaggle_csv", f"data.path={good},{bad}",
                    "seed=0,1", "trainer.epochs=2", "tracking.log_model=false",
                    f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode != 0
    runs = runs_of(uri)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert parent.info.status == "FAILED" and parent.info.end_time is not None
    # the bad file's jobs fail before a run is made: bad input leaves no run
    assert sorted(r.info.status for r in children) == ["FINISHED", "FINISHED"]
    assert {r.data.params["data.path"] for r in children} == {str(good)}
    assert "2 finished, 0 skipped (already FINISHED), 2 failed" in done.stdout
    assert "FAILED job" in done.stderr and "pixel 300" in done.stderr
    counted = [line.split("]")[0] for line in done.stdout.splitlines() if line.startswith("[")]
    assert counted[0].startswith("[1/4, ≈") and counted[-1] == "[4/4, 2 failed", counted


@pytest.mark.parametrize("override,message", [
    ("optim.lrr=0.1", "optim.lrr=0.1: no such key, so it would change nothing (did you mean "
                      "optim.lr?)"),
    ("trainer.epochs=ten", "trainer.epochs"),
    ("optim.lr=-0.5", "optim.lr=-0.5 is not allowed: expected a learning rate > 0"),
    ("model.activation=swish", "model.activation='swish' is not allowed"),
    ("optim=rmsprop", "optim=rmsprop: no such option (conf/optim/ has adam, sgd)"),
    ("model.hidden=0", "model.hidden=0 is not allowed"),
])
@pytest.mark.parametrize("multirun", [False, True])
def test_bad_config_gets_a_clear_message_and_no_run(tmp_path, override, message, multirun):
    uri = store(tmp_path)
    args = (["-m", "seed=0,1"] if multirun else []) + [override, f"tracking.uri={uri}"]
    done = pipeline("train.py", *args, cwd=tmp_path)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert runs_of(uri) == []


def test_single_run_without_tracking_keeps_its_files(tmp_path):
    done = pipeline("train.py", "tracking=off", "trainer.epochs=2", "model.hidden=[20,10]",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = next((tmp_path / "outputs" / "runs").glob("*/*"))
    assert (run_dir / "weights" / "final.npz").is_file()
    with np.load(run_dir / "weights" / "best.npz", allow_pickle=False) as w:
        assert w["W1"].shape == (64, 20) and w["W2"].shape == (20, 10)
    assert json.loads((run_dir / "digitlab_result.json").read_text())["status"] == "FINISHED"
    assert not (tmp_path / "mlruns").exists()


def _wait_for_running(uri: str, timeout: float = 120.0):
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            running = [r for r in runs_of(uri) if r.info.status == "RUNNING"
                       and "mlflow.parentRunId" in r.data.tags]
        except Exception:  # the store is still being created
            running = []
        if running and any(r.data.metrics.get("train_loss") for r in running):
            return running
        time.sleep(0.5)
    raise AssertionError("no run started training in time")


@pytest.mark.parametrize("sig,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_stopped_sweep_ends_its_runs_killed(tmp_path, sig, code):
    import signal

    uri = store(tmp_path)
    environment = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    # the log goes to a file: one line per epoch fills an undrained pipe, and the job then
    # blocks in write() and cannot react to the signal
    log = open(tmp_path / "sweep.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "train.py"), "-m",
                             "seed=0,1", "trainer.epochs=100000", "tracking.log_model=false",
                             f"tracking.uri={uri}"], cwd=tmp_path, env=environment,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_running(uri)
        proc.send_signal(getattr(signal, sig))
        proc.wait(timeout=60)
    finally:
        proc.kill()
        log.close()
    assert proc.returncode == code, (tmp_path / "sweep.log").read_text()[-2000:]
    statuses = sorted(r.info.status for r in runs_of(uri))
    assert statuses == ["KILLED", "KILLED"]  # the parent and the job in flight; nothing RUNNING
    said = (tmp_path / "sweep.log").read_text()
    assert "stopped: 0 finished run(s) kept in the store, the run(s) in progress and the " \
           "sweep's parent marked KILLED; the same command resumes it" in said, said[-2000:]


def test_runs_of_dead_processes_are_marked_killed_when_the_store_opens(tmp_path):
    from digitlab import tags as tag
    from digitlab.tracking.store import prepare_store

    uri = store(tmp_path)
    experiment_id = prepare_store(uri, "digitlab")
    dead = dead_pid()
    c = client(uri)
    orphan = c.create_run(experiment_id, tags={tag.HOST: __import__("socket").gethostname(),
                                               tag.PID: dead})
    alive = c.create_run(experiment_id, tags={tag.HOST: __import__("socket").gethostname(),
                                              tag.PID: str(os.getpid())})
    prepare_store(uri, "digitlab")
    assert c.get_run(orphan.info.run_id).info.status == "KILLED"
    assert "died" in c.get_run(orphan.info.run_id).data.tags["error"]
    assert c.get_run(alive.info.run_id).info.status == "RUNNING"


@pytest.mark.parametrize("script", ["status.py", "compare.py", "register.py", "rerun.py",
                                    "predict.py", "search.py", "reproduce.py"])
def test_every_pipeline_names_the_store_as_train_does(script, tmp_path):
    for old, new in (("uri=sqlite:///x.db", "tracking.uri=sqlite:///x.db"),
                     ("mlflow_experiment=other", "tracking.experiment=other")):
        done = pipeline(script, old, cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.strip().splitlines() == [
            f"digitlab: error: {old.split('=')[0]}= is now {new.split('=')[0]}= in every "
            f"pipeline: {new}"], done.stderr
    assert not list(tmp_path.iterdir())  # refused before anything was opened


def test_a_renamed_recipe_names_its_new_name(tmp_path):
    done = pipeline("train.py", "-m", "experiment=rolisz-digits,seed-blog", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "digitlab: error: experiment=seed-blog is now experiment=blog-network"], done.stderr


def test_output_piped_into_head_ends_quietly(sweep, tmp_path):
    _, uri, _ = sweep
    done = subprocess.run(f"{sys.executable} {ROOT / 'pipelines' / 'status.py'} "
                          f"tracking.uri={uri} | head -1", shell=True, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith("store:") and "Traceback" not in done.stderr, done.stderr


def test_help_lists_the_choices_a_user_makes_not_the_schemas(tmp_path):
    done = pipeline("train.py", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "data: digits, fashion_mnist, kaggle_csv, mnist" in done.stdout
    assert "optim: adam, sgd" in done.stdout and "simard03-800" in done.stdout
    assert "base_" not in done.stdout and "recipe:" not in done.stdout


@pytest.mark.parametrize("python", [".venv/bin/python", "python", str(ROOT / ".venv/bin/python")])
def test_make_completion_completes_keys_and_groups(python, tmp_path):
    script = f"""
eval "$(make -s -C {ROOT} completion)"
cd {ROOT}
for line in "{python} pipelines/train.py optim.l" \\
            "{python} pipelines/train.py experiment=nielsen-ch1-" \\
            "{python} pipelines/train.py data="; do
  COMP_LINE="$line"; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=($COMP_LINE); COMP_CWORD=2
  hydra_bash_completion; printf '%s\\n' "${{COMPREPLY[@]}}"
done
"""
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": f"{ROOT / '.venv/bin'}:{os.environ['PATH']}"})
    assert "optim.lr=" in done.stdout.split() and "optim.l2_style=" in done.stdout.split(), (
        done.stdout, done.stderr[-2000:])
    assert "experiment=nielsen-ch1-30" in done.stdout.split()
    assert "data=digits" in done.stdout.split() and "data=mnist" in done.stdout.split()
    assert "base_" not in done.stdout  # the schemas the options build on are no options


@pytest.mark.parametrize("script,override,message", [
    ("status.py", "foo=1", "foo=1: no such key, so it would change nothing"),
    ("compare.py", "top=abc", "top=abc: expected a whole number; give top= such a value"),
    ("compare.py", "metricc=x", "metricc=x: no such key, so it would change nothing (did you "
                                "mean metric?)"),
    ("train.py", "optim.lrr=0.1", "optim.lrr=0.1: no such key, so it would change nothing (did "
                                  "you mean optim.lr?)"),
    ("train.py", "optim.lr=abc", "optim.lr=abc: expected a number (0.1, 1e-3)"),
    ("train.py", "tracking.log_model=maybe", "tracking.log_model=maybe: expected true or false"),
    ("train.py", "data=base_data", "data=base_data: base_data is the schema the data options "
                                   "build on, not an option; choose one of digits, "
                                   "fashion_mnist, kaggle_csv, mnist"),
    ("train.py", "data=mnits", "data=mnits: no such option (conf/data/ has digits, "
                               "fashion_mnist, kaggle_csv, mnist); did you mean data=mnist?"),
    ("train.py", "data=mnist", "data=mnist: data.root is not set, so digitlab does not know "
                               "where its official IDX files are"),
    ("register.py", "tracking.uri=http://me:pw@host:1", "'http://…@host:1' is not allowed"),
    ("search.py", "+space.x=1", "space.x"),
])
def test_every_pipeline_refuses_a_bad_override_in_one_line(script, override, message, tmp_path):
    uri = store(tmp_path)
    where = [f"tracking.uri={uri}"] if script == "train.py" else []
    done = pipeline(script, override, *where, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
    assert runs_of(uri) == []  # bad input, a missing dataset included, leaves no run


def test_a_single_run_ends_with_its_id_and_its_repeat_is_skipped_without_training(tmp_path):
    uri = store(tmp_path)
    args = ("trainer.epochs=1", f"tracking.uri={uri}")  # its model: register.py's hint runs
    first = pipeline("train.py", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    (run,) = runs_of(uri)
    run_id = run.info.run_id
    assert f"\nrun {run_id}\n" in first.stdout
    for command in ("rerun.py", "register.py"):  # with the interpreter that ran it, the store
        assert (f"{sys.executable} {ROOT / 'pipelines'}/{command} run_id={run_id} "
                f"tracking.uri={uri}\n") in first.stdout
    # the repeat finds the run through MLflow and the digits in the cache: no split, no
    # scikit-learn, no reports (a process of its own: what it imports is what is tested)
    again = pipeline_process("train.py", *args, cwd=tmp_path,
                             env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert again.returncode == 0, again.stderr[-2000:]
    said = [line for line in again.stdout.splitlines() if "already FINISHED" in line]
    assert len(said) == 1 and f"as run {run_id}, skipped" in said[0]
    imported = {line.rsplit("|", 1)[1].strip() for line in again.stderr.splitlines()
                if line.startswith("import time:")}
    assert "mlflow" in imported and not imported & {"sklearn", "matplotlib"}
    assert [r.info.run_id for r in runs_of(uri)] == [run_id]
    # the printed rerun and register lines run as pasted, from another folder, with no virtual
    # environment activated: they name this store, which is not the project's
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for hint, said in (("rerun it:", "bit for bit"), ("register:", "@champion → version 1")):
        [line] = [x for x in first.stdout.splitlines() if x.strip().startswith(hint)]
        pasted = subprocess.run(line.split(":", 1)[1].strip(), shell=True, cwd=elsewhere,
                                capture_output=True, text=True, timeout=600,
                                env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert pasted.returncode == 0 and said in pasted.stdout, pasted.stderr[-2000:]


@pytest.mark.parametrize("args", [("trainer.epochs=2", "tracking=off"),
                                  ("trainer.epochs=2",),
                                  ("-m", "seed=0,1,2", "trainer.epochs=2", "hydra/launcher=joblib",
                                   "hydra.launcher.n_jobs=2")])
def test_no_process_outlives_its_command(tmp_path, args):
    """Every process a command starts (joblib's workers among them) has ended when the command
    returns; the resource trackers of multiprocessing and loky, which clean up after their
    parent by design, end by themselves as it exits: the process group is empty within
    seconds."""
    import os
    import signal

    command = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "train.py"), *args,
                                f"tracking.uri={store(tmp_path)}"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    assert command.wait(timeout=600) == 0, command.stderr.read()[-2000:]
    left = subprocess.run(["ps", "-ww", "-o", "stat=,args=", "-g", str(command.pid)],
                          capture_output=True, text=True).stdout.splitlines()
    # a zombie, or a process in its exit (no command line left: "[python]"), has ended
    running = [line for line in left
               if not line.lstrip().startswith("Z") and not line.split(None, 1)[-1].startswith("[")]
    assert all("resource_tracker import" in line for line in running), running
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(command.pid, 0)
        except ProcessLookupError:
            return  # the group is empty
        time.sleep(0.1)
    os.killpg(command.pid, signal.SIGKILL)
    pytest.fail(f"{' '.join(args)}: processes of the command outlived it by 10 s: {left}")


def test_a_sweep_and_compare_log_to_the_store_mlflow_tracking_uri_names(tmp_path):
    """No tracking.uri: every job, the parent and compare.py's files go to MLFLOW_TRACKING_URI,
    and nothing to the project's own store."""
    uri = store(tmp_path)
    project_store = ROOT / "mlruns" / "mlflow.db"
    before = project_store.stat().st_mtime_ns if project_store.exists() else None
    for args in (["train.py", "-m", "seed=0,1", "trainer.epochs=2"],
                 ["compare.py", f"out={tmp_path / 'reports'}"]):
        done = pipeline(*args, cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
        assert done.returncode == 0, done.stderr[-3000:]
    runs = runs_of(uri)
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    parent = next(r for r in runs if "digitlab.jobs" in r.data.tags)
    assert [a.path for a in client(uri).list_artifacts(parent.info.run_id)] == ["compare"]
    after = project_store.stat().st_mtime_ns if project_store.exists() else None
    assert after == before  # the project's store untouched


@pytest.mark.parametrize("launcher", [(), ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")])
def test_one_config_is_one_run_per_sweep(tmp_path, launcher):
    """seed=1,1 and model.hidden=32,[32] name one config twice: it is trained once."""
    uri, done = sweep_into(tmp_path, "seed=1,1", "model.hidden=32,[32]", "trainer.epochs=2",
                           "tracking.log_model=false", *launcher)
    children = [r for r in runs_of(uri) if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 1 and children[0].info.status == "FINISHED"
    assert "1 finished, 0 skipped" in done.stdout


def test_a_read_command_never_creates_a_store(tmp_path):
    typo = tmp_path / "mlrun" / "mlflow.db"
    for command in ("status.py", "compare.py", "register.py"):
        done = pipeline(command, f"tracking.uri=sqlite:///{typo}", cwd=tmp_path)
        assert done.returncode == 2, (command, done.stderr[-2000:])
        assert done.stderr.strip().endswith("which creates it."), done.stderr
        assert "no MLflow store there" in done.stderr and "does not exist" in done.stderr
        assert not typo.parent.exists(), command


def test_register_takes_the_lowest_loss_and_the_highest_accuracy(sweep, tmp_path):
    _, uri, _ = sweep
    runs = [r for r in runs_of(uri) if "mlflow.parentRunId" in r.data.tags]
    lowest = min(runs, key=lambda r: r.data.metrics["test_loss"]).info.run_id
    highest = max(runs, key=lambda r: r.data.metrics["test_loss"]).info.run_id
    done = pipeline("register.py", f"tracking.uri={uri}", "metric=test_loss", "name=by-loss",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"← run {lowest}" in done.stdout and "the lowest test_loss" in done.stdout
    assert client(uri).get_model_version_by_alias("by-loss", "champion").run_id == lowest
    # the alias does not move to a run with a higher loss unless forced
    worse = pipeline("register.py", f"tracking.uri={uri}", "metric=test_loss", "name=by-loss",
                     f"run_id={highest}", cwd=tmp_path)
    assert worse.returncode == 2 and "the alias stays" in worse.stderr


@pytest.mark.parametrize("key", NOT_TRAINED_BY)
def test_a_run_that_differs_only_in_what_it_does_not_train_by_is_skipped(tmp_path, key):
    """Each key of config.NOT_TRAINED_BY, changed alone: the run is found FINISHED, and no
    second run is made (the identity and the config grouping leave out the same keys)."""
    uri = store(tmp_path)
    args = ("trainer.epochs=1", "tracking.log_model=false", f"tracking.uri={uri}")
    first = pipeline("train.py", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    other = {"data.cache_dir": f"data.cache_dir={tmp_path / 'elsewhere'}",
             "trainer.diagnostics": "trainer.diagnostics=off",
             "trainer.blas_threads": "trainer.blas_threads=1"}[key]
    again = pipeline("train.py", *args, other, cwd=tmp_path)
    assert again.returncode == 0 and "already FINISHED" in again.stdout, again.stdout
    assert len(runs_of(uri)) == 1


def test_the_same_config_sequential_then_on_joblib_workers_is_stored_once(tmp_path):
    """trainer.blas_threads (1 per joblib worker, every core sequentially) changes how fast, not
    what: the second sweep finds both runs FINISHED and trains nothing."""
    uri = store(tmp_path)
    args = ("-m", "seed=0,1", "trainer.epochs=2", "tracking.log_model=false",
            f"tracking.uri={uri}")
    first = pipeline("train.py", *args, cwd=tmp_path)
    assert first.returncode == 0 and "2 finished, 0 skipped" in first.stdout, first.stderr
    second = pipeline("train.py", *args, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                      cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "0 finished, 2 skipped (already FINISHED)" in second.stdout, second.stdout
    assert "starting 2 joblib workers" in second.stdout
    counted = [line for line in second.stdout.splitlines() if line.startswith("[")]
    assert len(counted) == 2 and all(" skipped" in line.split("]")[0] for line in counted)
    assert len([r for r in runs_of(uri) if "mlflow.parentRunId" in r.data.tags]) == 2


def test_help_says_what_each_key_does(tmp_path):
    done = pipeline("train.py", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "  optim.lr: η, on the mini-batch's mean gradient" in done.stdout
    assert "  data.cache_dir: parsed arrays; None = $DIGITLAB_CACHE" in done.stdout
    assert "data: digits, fashion_mnist, kaggle_csv, mnist" in done.stdout  # no base_data


def test_each_dataset_is_its_own_experiment_and_compare_takes_the_latest_sweep(tmp_path):
    uri = sweep_digits_and_a_kaggle_csv(tmp_path, epochs=1)
    for name, dataset in (("digitlab-digits", "digits"), ("digitlab-kaggle_csv", "kaggle_csv")):
        runs = runs_of(uri, name)
        assert len(runs) == 3  # the parent and its two runs, nothing of the other dataset
        assert {r.data.params["data.name"] for r in runs if "data.name" in r.data.params} == {
            dataset}
    done = pipeline("compare.py", f"tracking.uri={uri}", "out=r", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the latest sweep of the store" in done.stdout
    kaggle_sweep = next(r.info.run_id for r in runs_of(uri, "digitlab-kaggle_csv")
                        if "mlflow.parentRunId" not in r.data.tags)
    assert [p.name for p in (tmp_path / "r").iterdir()] == [kaggle_sweep]
    done = pipeline("compare.py", f"tracking.uri={uri}", "tracking.experiment=digitlab-digits",
                    "out=r2", cwd=tmp_path)
    assert "the latest sweep of experiment 'digitlab-digits'" in done.stdout
    # one sweep, one experiment: two datasets need a name for all, before anything runs
    before = len(runs_of(uri))
    done = pipeline("train.py", "-m", "data=digits,fashion_mnist", f"tracking.uri={uri}",
                    cwd=tmp_path)
    assert done.returncode == 2 and len(runs_of(uri)) == before
    assert "would go to 2 MLflow experiments (digitlab-digits, digitlab-fashion_mnist" in (
        done.stderr)


def test_a_run_says_each_slow_step_before_it_and_a_sweep_keeps_them_in_its_logs(tmp_path):
    uri = store(tmp_path)
    done = pipeline("train.py", "trainer.epochs=1", "tracking.log_model=false",
                    f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    steps = ["reading digits …", "recorded in", "creating the MLflow store",
             "training on 1293 rows, 1 epoch(s) at most …", "epoch 1/1  train_loss=",
             "evaluating and recording the run …"]
    found = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
    assert found == sorted(found), done.stdout  # each step said before it starts, in order
    done = pipeline("train.py", "-m", "seed=1,2", "trainer.epochs=1", "tracking.log_model=false",
                    f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "creating the MLflow store" not in done.stdout  # made by the first command
    assert "reading digits" not in done.stdout and len(done.stdout.splitlines()) <= 8
    logs = list((tmp_path / "outputs" / "sweeps").glob("*/*/*/train.log"))
    assert len(logs) == 2 and all("reading digits …" in log.read_text() for log in logs)


def test_each_command_runs_twice_in_one_process_as_in_two(tmp_path):
    """No state stays behind in the process (no module globals, no environment written at
    import): train (a sweep, then one run), status, compare and register, each called twice in
    this process with nothing reset in between, say what two processes would say."""
    from in_process import run_script

    uri = store(tmp_path)

    def twice(script: str, *args: str) -> tuple:
        done = [run_script(ROOT / "pipelines" / script, list(args), cwd=tmp_path, fresh=False)
                for _ in range(2)]
        for d in done:
            assert d.returncode == 0, d.stderr[-2000:]
        return done[0].stdout, done[1].stdout

    first, second = twice("train.py", "-m", "seed=0,1", "trainer.epochs=1", f"tracking.uri={uri}")
    assert "2 finished, 0 skipped" in first and "0 finished, 2 skipped" in second
    first, second = twice("train.py", "seed=2", "trainer.epochs=1", f"tracking.uri={uri}")
    assert "already FINISHED" not in first and "already FINISHED" in second
    first, second = twice("status.py", f"tracking.uri={uri}")
    assert first == second == pipeline_process("status.py", f"tracking.uri={uri}",
                                               cwd=tmp_path).stdout
    first, second = twice("compare.py", f"tracking.uri={uri}", f"out={tmp_path / 'cmp'}")
    assert first == second and "2 runs of" in first
    first, second = twice("register.py", f"tracking.uri={uri}")
    assert "version 1 (new)" in first and "nothing to do" in second
    assert len(runs_of(uri)) == 3 + 2  # three runs, two sweeps' parents


def test_the_printed_serve_command_pastes_as_one_with_any_model_name(tmp_path):
    import shlex

    uri = store(tmp_path)
    first = pipeline("train.py", "trainer.epochs=1", f"tracking.uri={uri}", cwd=tmp_path)
    run_id = first.stdout.split("\nrun ", 1)[1].split()[0]
    done = pipeline("register.py", f"tracking.uri={uri}", f"run_id={run_id}", "name=my model",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [x for x in done.stdout.splitlines() if x.startswith("serve: ")]
    words = shlex.split(line.removeprefix("serve: "))
    assert words[0] == f"MLFLOW_TRACKING_URI={uri}"
    assert words[words.index("-m") + 1] == "models:/my model@champion"
