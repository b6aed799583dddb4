"""The Optuna search (pipelines/search.py) on the digits: trials as MLflow child runs, failing
trials recorded without stopping the search, and a search killed mid-trial that resumes to the
requested number of trials without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, client, pipeline, runs_of, store

pytestmark = pytest.mark.timeout(900)
SMALL_SPACE = ["space.model.hidden.high=32", "space.optim.lr.low=0.1", "space.optim.lr.high=1.0",
               "space.trainer.epochs.low=2", "space.trainer.epochs.high=4"]


def study_of(storage: str, name: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=storage)


def trials_by_state(study) -> dict[str, list]:
    out: dict[str, list] = {}
    for t in study.get_trials(deepcopy=False):
        out.setdefault(t.state.name, []).append(t)
    return out


def test_a_search_logs_each_trial_as_a_child_run_and_tags_the_best(tmp_path):
    uri, storage = store(tmp_path), f"sqlite:///{tmp_path / 'optuna.db'}"
    done = pipeline("search.py", "n_trials=4", "study=s1", f"storage={storage}", f"tracking.uri={uri}",
                    *SMALL_SPACE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = study_of(storage, "s1")
    assert len(trials_by_state(study)["COMPLETE"]) == 4
    runs = runs_of(uri, "search")
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 4
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.data.params["tracking.experiment"] for c in children} == {"search"}  # as it is
    by_trial = {int(c.data.tags["digitlab.trial"]): c for c in children}
    for trial in study.trials:
        run = by_trial[trial.number]
        assert run.info.run_id == trial.user_attrs["mlflow_run_id"]
        assert run.data.metrics["best_val_accuracy"] == pytest.approx(trial.value)
        assert int(run.data.params["model.hidden"]) == trial.params["model.hidden"]
        assert float(run.data.params["optim.lr"]) == pytest.approx(trial.params["optim.lr"])
    best = study.best_trial
    assert parent.data.tags["digitlab.best_trial"] == str(best.number)
    assert by_trial[best.number].data.tags.get("digitlab.best") == "true"
    assert f"best: trial {best.number}" in done.stdout

    again = pipeline("search.py", "n_trials=4", "study=s1", f"storage={storage}", f"tracking.uri={uri}",
                     *SMALL_SPACE, cwd=tmp_path)  # already complete: nothing new
    assert again.returncode == 0 and "4 of 4 trials complete" in again.stdout
    assert len(study_of(storage, "s1").trials) == 4


def test_failing_trials_are_recorded_and_the_search_goes_on(tmp_path):
    uri, storage = store(tmp_path), f"sqlite:///{tmp_path / 'optuna.db'}"
    done = pipeline("search.py", "n_trials=4", "study=s2", f"storage={storage}", f"tracking.uri={uri}",
                    "sampler=grid", "~space", "+space={optim:{lr:{type:categorical,"
                    "choices:[0.5,500.0]}},seed:{type:categorical,choices:[0,1]}}",
                    "overrides=['model.activation=relu','model.output=identity',"
                    "'model.loss=quadratic','model.init=normal','trainer.epochs=5']", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    states = trials_by_state(study_of(storage, "s2"))
    assert len(states["COMPLETE"]) == 2 and len(states["FAIL"]) == 2
    assert {t.params["optim.lr"] for t in states["FAIL"]} == {500.0}
    runs = [r for r in runs_of(uri, "search") if "mlflow.parentRunId" in r.data.tags]
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert len(failed) == 2 and all("diverged" in r.data.tags["error"] for r in failed)
    assert "2 failed" in done.stdout and "best: trial" in done.stdout


def test_a_killed_search_resumes_to_the_requested_trials_without_duplicates(tmp_path):
    uri, storage = store(tmp_path), f"sqlite:///{tmp_path / 'optuna.db'}"
    args = ["n_trials=6", "study=s3", f"storage={storage}", f"tracking.uri={uri}",
            "space.model.hidden.high=32", "space.optim.lr.low=0.1", "space.optim.lr.high=1.0",
            "space.trainer.epochs.low=30", "space.trainer.epochs.high=40"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    log = open(tmp_path / "first.log", "w")  # a file: a pipe nobody reads could fill and block
    first = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "search.py"), *args],
                             cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill it in the middle of its third trial
        time.sleep(0.5)
        try:
            states = trials_by_state(study_of(storage, "s3"))
        except Exception:
            continue
        if len(states.get("COMPLETE", [])) >= 2 and states.get("RUNNING") and any(
                r.info.status == "RUNNING" and "digitlab.trial" in r.data.tags
                for r in runs_of(uri, "search")):  # the third trial is training
            break
    else:
        first.kill()
        pytest.fail("the first search never reached its third trial")
    first.send_signal(signal.SIGKILL)  # no chance to clean up: the hardest case
    first.wait(timeout=60)
    log.close()
    cut_off = trials_by_state(study_of(storage, "s3"))["RUNNING"][0]

    resumed = pipeline("search.py", *args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"rerunning cut-off trial(s) [{cut_off.number}]" in resumed.stdout
    study = study_of(storage, "s3")
    states = trials_by_state(study)
    assert len(states["COMPLETE"]) == 6 and "RUNNING" not in states
    assert [t.number for t in states["FAIL"]] == [cut_off.number]
    retry = next(t for t in states["COMPLETE"] if t.user_attrs.get("retry_of") == cut_off.number)
    assert retry.params == cut_off.params
    drawn = [tuple(sorted(t.params.items())) for t in states["COMPLETE"] if t is not retry]
    assert len(set(drawn)) == len(drawn) == 5  # the resumed sampler does not replay trial 0's draw
    runs = runs_of(uri, "search")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"  # one parent, reopened
    finished = [r for r in runs if "mlflow.parentRunId" in r.data.tags
                and r.info.status == "FINISHED"]
    trial_numbers = [int(r.data.tags["digitlab.trial"]) for r in finished]
    assert sorted(trial_numbers) == sorted(t.number for t in states["COMPLETE"])  # no duplicates
    killed = [r for r in runs if r.info.status == "KILLED" and "mlflow.parentRunId" in r.data.tags]
    assert [r.data.tags["digitlab.trial"] for r in killed] == [str(cut_off.number)]


@pytest.mark.parametrize("args, message", [
    (["space.model.hidden.low=512"], "space.model.hidden: needs low < high"),
    (["+space.model.hiden={type:int,low:8,high:64}"], "model.hiden"),
    (["space.optim.lr.low=0"], "log=true needs low > 0"),
    (["space.optim.lr.high=inf"], "space.optim.lr: high=inf; give a finite number"),
    (["space.optim.lr.low=abc"], "space.optim.lr: low='abc'; give a finite number"),
    (["space.model.hidden.high=nan"], "space.model.hidden: high=nan; give a finite number"),
    (["~space"], "space: empty"),
    (["sampler=cmaes"], "sampler='cmaes'"),
    (["sampler=grid"], "sampler=grid: every dimension must be categorical"),
    (["study=\"it's\""], "without quotes or backticks"),
    (["+typo=1"], "typo: no such key"),
    (["+space.optim.lr.step=0.1"], "space.optim.lr: The parameter `step` is not supported when"),
    (["+space.optim.lr.steps=0.1"], "space.optim.lr: unknown field(s) steps"),
    (["metric=val_acc"], "metric='val_acc': use one of best_val_accuracy, test_accuracy"),
    (["metric=test_loss", "direction=maximize"], "direction=maximize: test_loss is better lower"),
])
def test_a_bad_search_config_is_one_line_and_exit_2(tmp_path, args, message):
    done = pipeline("search.py", f"storage=sqlite:///{tmp_path / 'optuna.db'}",
                    f"tracking.uri={store(tmp_path)}", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "optuna.db").exists()  # nothing was created


def test_a_search_storage_folder_is_made_or_its_failure_is_one_line(tmp_path):
    uri = store(tmp_path)
    done = pipeline("search.py", "storage=sqlite:////proc/digitlab/optuna.db", f"tracking.uri={uri}",
                    cwd=tmp_path)
    assert done.returncode == 2 and "cannot write in /proc" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    storage = f"sqlite:///{tmp_path / 'new' / 'folder' / 'optuna.db'}"
    done = pipeline("search.py", "n_trials=1", f"storage={storage}", f"tracking.uri={uri}", *SMALL_SPACE,
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "new" / "folder" / "optuna.db").exists()


def test_a_study_keeps_the_metric_and_direction_it_was_created_with(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    common = (f"storage={storage}", f"tracking.uri={store(tmp_path)}", "study=s", *SMALL_SPACE)
    done = pipeline("search.py", "n_trials=1", "metric=test_loss", *common, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    study = study_of(storage, "s")
    assert study.direction.name == "MINIMIZE" and study.user_attrs["metric"] == "test_loss"
    for other in (["metric=test_accuracy"], []):  # [] is the default: best_val_accuracy
        refused = pipeline("search.py", "n_trials=2", *other, *common, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert refused.stderr.strip().splitlines() == [
            f"digitlab: error: study=s: it optimises test_loss (minimize) and this command asks "
            f"for {(other or ['=best_val_accuracy'])[0].split('=')[1]} (maximize); resume it with "
            "metric=test_loss, or start another with study=<new name>"]
    assert len(study_of(storage, "s").trials) == 1  # nothing ran


def test_a_storage_password_is_never_printed_or_kept(tmp_path):
    uri = store(tmp_path)
    done = pipeline("search.py", "storage=postgresql://alice:S3cretPW@127.0.0.1:9/optuna",
                    f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 2 and "cannot open the study" in done.stderr, done.stderr
    assert "S3cretPW" not in done.stdout + done.stderr and "alice:***@" in done.stderr


def test_one_study_name_in_two_storages_is_two_searches(tmp_path):
    """A parent run is one (storage, study): the same study= in another storage= file gets a
    parent of its own, and neither is told the other's trials."""
    uri = store(tmp_path)
    for n in (1, 2):
        done = pipeline("search.py", "n_trials=1", "study=same",
                        f"storage=sqlite:///{tmp_path / f'optuna{n}.db'}", f"tracking.uri={uri}",
                        *SMALL_SPACE, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "1 of 1 trials complete" not in done.stdout.splitlines()[0]
    parents = [r for r in runs_of(uri) if r.data.tags.get("digitlab.study") == "same"
               and "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2
    assert {r.data.tags["digitlab.storage"] for r in parents} == {
        f"sqlite:///{tmp_path / f'optuna{n}.db'}" for n in (1, 2)}


def test_a_search_whose_every_trial_failed_exits_1(tmp_path):
    uri, storage = store(tmp_path), f"sqlite:///{tmp_path / 'optuna.db'}"
    done = pipeline("search.py", "n_trials=2", "study=all-fail", f"storage={storage}",
                    f"tracking.uri={uri}", "sampler=grid", "~space",
                    "+space={optim:{lr:{type:categorical,choices:[500.0]}},"
                    "seed:{type:categorical,choices:[0,1]}}",
                    "overrides=['model.activation=relu','model.output=identity',"
                    "'model.loss=quadratic','model.init=normal','trainer.epochs=5']", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "0 of 2 trials complete, 2 failed" in done.stdout and "best: trial" not in done.stdout


def test_failed_trials_do_not_count_toward_n_trials(tmp_path):
    """n_trials=2 over a space where one lr diverges: the search goes on until two trials are
    complete (the sampler's seed makes the sequence fixed)."""
    uri, storage = store(tmp_path), f"sqlite:///{tmp_path / 'optuna.db'}"
    done = pipeline("search.py", "n_trials=2", "study=s3", f"storage={storage}",
                    f"tracking.uri={uri}", "sampler=random", "seed=5", "~space",
                    "+space={optim:{lr:{type:categorical,choices:[0.5,500.0]}}}",
                    "overrides=['model.activation=relu','model.output=identity',"
                    "'model.loss=quadratic','model.init=normal','trainer.epochs=3']", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    states = trials_by_state(study_of(storage, "s3"))
    assert len(states["COMPLETE"]) == 2 and len(states.get("FAIL", [])) >= 1, states.keys()
    assert "2 of 2 trials complete" in done.stdout


def test_a_pruner_stops_a_trailing_trial_and_its_run_says_so(tmp_path):
    """Five good trials, then, in the same study, one whose learning rate cannot learn: Optuna's
    MedianPruner stops it after its first epoch (worse than the median there). Its run is
    FINISHED at that epoch, tagged pruned, under an identity no full run shares; the trial is
    PRUNED and counts toward n_trials; compare says where it stopped."""
    uri, storage = store(tmp_path), f"sqlite:///{tmp_path / 'optuna.db'}"
    common = ["study=p", f"storage={storage}", f"tracking.uri={uri}", "pruner=median",
              "space.model.hidden.high=32", "space.trainer.epochs.low=3",
              "space.trainer.epochs.high=4"]
    good = pipeline("search.py", "n_trials=5", "space.optim.lr.low=0.4", "space.optim.lr.high=0.6",
                    *common, cwd=tmp_path)
    assert good.returncode == 0, good.stderr[-3000:]
    bad = pipeline("search.py", "n_trials=6", "space.optim.lr.low=0.00001",
                   "space.optim.lr.high=0.00002", *common, cwd=tmp_path)
    assert bad.returncode == 0, bad.stderr[-3000:]
    assert "6 of 6 trials complete (1 stopped by the pruner), 0 failed" in bad.stdout
    [pruned] = trials_by_state(study_of(storage, "p"))["PRUNED"]
    assert pruned.number == 5 and list(pruned.intermediate_values) == [1]
    run = next(r for r in runs_of(uri, "search") if r.data.tags.get("digitlab.trial") == "5")
    assert run.info.status == "FINISHED" and run.data.metrics["epochs_run"] == 1
    assert run.data.tags["digitlab.pruned"] == "true" and run.data.tags["digitlab.pruned_epoch"] == "1"
    assert run.data.tags["digitlab.config_hash"].endswith(" pruned at 1")
    # a trial never goes on: no training state kept (a halving sweep's runs keep one)
    logged = {a.path for a in client(uri).list_artifacts(run.info.run_id)}
    assert "report" in logged and "checkpoint" not in logged
    compared = pipeline("compare.py", f"tracking.uri={uri}", "tracking.experiment=search",
                        f"sweep={run.data.tags['mlflow.parentRunId']}", "out=r", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr[-3000:]
    assert "Stopped early (by the search's pruner or a halving sweep)" in compared.stdout
    assert "after epoch 1." in compared.stdout


@pytest.mark.parametrize("args,said", [
    (("pruner=hyperbnd",), "pruner='hyperbnd': use one of none, median, halving, hyperband"),
    (("pruner=median", "metric=train_seconds"), "pruner=median: a pruner compares trials epoch"),
    (("pruner=halving", "overrides=['data.val_mode=none']"), "the trials have no validation set"),
])
def test_a_pruner_that_cannot_act_is_refused_in_one_line(tmp_path, args, said):
    done = pipeline("search.py", f"tracking.uri={store(tmp_path)}", *args, cwd=tmp_path)
    assert done.returncode == 2 and said in done.stderr, done.stderr[-2000:]
