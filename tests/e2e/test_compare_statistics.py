"""compare.py says which differences are real, on a real digits sweep (2 configs × 3 seeds):
intervals, Welch against the best with Holm, verdicts and the seed budget in the terminal, in
table.csv and table.md; a= b= compares two configs (Welch) or two runs image by image (McNemar
on the test predictions each run keeps); bad head-to-head input is one line and exit 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import client, pipeline, runs_of, sweep_digits_and_a_kaggle_csv, sweep_into

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("statistics")
    uri, done = sweep_into(tmp, "model.hidden=4,32", "optim.lr=0.5", "seed=0,1,2",
                           "trainer.epochs=4")
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp, uri


def _children(uri):
    return [r for r in runs_of(uri) if "mlflow.parentRunId" in r.data.tags]


def test_the_table_gives_intervals_verdicts_and_the_seed_budget(sweep):
    tmp, uri = sweep
    done = pipeline("compare.py", f"tracking.uri={uri}", "out=reports", cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    [folder] = (tmp / "reports").iterdir()
    table = pd.read_csv(folder / "table.csv")
    assert table["config"].tolist() == ["hidden=32", "hidden=4"] and table["n"].tolist() == [3, 3]
    assert {"best_val_accuracy_ci_low", "best_val_accuracy_ci_high", "p_vs_best",
            "p_vs_best_holm", "verdict"} <= set(table.columns)
    per_seed = {h: [r.data.metrics["best_val_accuracy"] for r in _children(uri)
                    if r.data.params["model.hidden"] == h] for h in ("32", "4")}
    low, high = stats.t.interval(0.95, 2, loc=np.mean(per_seed["32"]),
                                 scale=stats.sem(per_seed["32"]))
    assert table.loc[0, ["best_val_accuracy_ci_low", "best_val_accuracy_ci_high"]].tolist() \
        == pytest.approx([low, high])
    p = stats.ttest_ind(per_seed["32"], per_seed["4"], equal_var=False).pvalue
    assert table.loc[1, "p_vs_best"] == pytest.approx(p)  # one comparison: Holm changes nothing
    assert table.loc[1, "p_vs_best_holm"] == pytest.approx(p)
    assert table.loc[0, "verdict"] == "best"
    assert table.loc[1, "verdict"] == ("worse" if p < 0.05 else "not distinguishable from best")
    markdown = (folder / "table.md").read_text()
    assert "95 % CI" in markdown and "Holm" in markdown and "80 % power" in markdown
    assert "verdict" in done.stdout and "to tell hidden=32 from hidden=4" in done.stdout
    assert len(pd.read_csv(folder / "runs.csv")) == 6  # every run, one row each


def test_two_configs_head_to_head_is_welchs_test(sweep):
    tmp, uri = sweep
    done = pipeline("compare.py", f"tracking.uri={uri}", "a='hidden=32'", "b='hidden=4'", cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    per_seed = {h: [r.data.metrics["best_val_accuracy"] for r in _children(uri)
                    if r.data.params["model.hidden"] == h] for h in ("32", "4")}
    p = stats.ttest_ind(per_seed["32"], per_seed["4"], equal_var=False).pvalue
    text = done.stdout.strip()
    assert len(text.splitlines()) == 1 and "Welch's two-sided t-test" in text
    assert (f"p = {p:.3f}" if p >= 0.001 else "p < 0.001") in text
    assert "over 3 seed(s)" in text and "80 % power" in text


def test_two_runs_head_to_head_is_mcnemars_exact_test_on_the_same_test_images(sweep):
    tmp, uri = sweep
    by_hidden = {r.data.params["model.hidden"]: r for r in _children(uri)
                 if r.data.params["seed"] == "0"}
    a, b = by_hidden["32"].info.run_id, by_hidden["4"].info.run_id
    done = pipeline("compare.py", f"tracking.uri={uri}", f"a={a}", f"b={b}", cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = {}
    for run_id in (a, b):  # each run keeps its test predictions: integers, no pickle
        path = client(uri).download_artifacts(run_id, "report/test_predictions.npz", str(tmp))
        with np.load(path, allow_pickle=False) as arrays:
            saved[run_id] = {k: arrays[k] for k in arrays.files}
        assert saved[run_id]["predicted"].dtype == np.int64
    true = saved[a]["true"]
    right_a, right_b = saved[a]["predicted"] == true, saved[b]["predicted"] == true
    assert right_a.mean() == pytest.approx(by_hidden["32"].data.metrics["test_accuracy"])
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[np.sum(right_a & right_b), np.sum(right_a & ~right_b)],
             [np.sum(~right_a & right_b), np.sum(~right_a & ~right_b)]]
    p = mcnemar(table, exact=True).pvalue
    text = done.stdout.strip()
    assert "McNemar's exact test" in text and f"On the same {len(true)} test images" in text
    assert (f"p = {p:.3f}" if p >= 0.001 else "p < 0.001") in text
    assert f"{table[0][1]} images were right for" in text


@pytest.mark.parametrize("args,message", [
    (["a='hidden=32'"], "a= alone: a head-to-head comparison needs both a=<…> and b=<…>"),
    (["a='hidden=99'", "b='hidden=4'"], "a=hidden=99: no config of that name in sweep"),
    (["a=0123456789abcdef0123456789abcdef", "b='hidden=4'"],
     "a=0123456789abcdef0123456789abcdef: no such run in"),
    (["alpha=1.5"], "alpha=1.5: give the error rate of the verdicts, a number between 0 and 1"),
    (["metric=val_acc"], "metric=val_acc: no run of "),
])
def test_bad_head_to_head_input_is_one_line(sweep, args, message):
    tmp, uri = sweep
    done = pipeline("compare.py", f"tracking.uri={uri}", *args, cwd=tmp)
    assert done.returncode == 2, done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"digitlab: error: {message}"), line


def test_all_runs_never_pools_two_datasets(tmp_path):
    uri = sweep_digits_and_a_kaggle_csv(tmp_path, epochs=2)
    done = pipeline("compare.py", f"tracking.uri={uri}", "all_runs=true", "out=r", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(tmp_path / "r" / "all-runs" / "table.csv")
    assert sorted(table["dataset"]) == ["digits", "kaggle_csv"]  # one row each, never pooled
    assert table["n"].tolist() == [2, 2] and table["verdict"].tolist() == ["best", "best"]
