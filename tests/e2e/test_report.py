"""The HTML report of a sweep (compare.py format=html) opened from disk in headless Chromium with
every network request blocked: it renders its tables and plots with no JavaScript error. The
screenshot goes to test-output/report/ (or $DIGITLAB_TEST_OUTPUT/report/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ROOT, client, pipeline, runs_of, store

SHOTS = Path(os.environ.get("DIGITLAB_TEST_OUTPUT", ROOT / "test-output")) / "report"
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def sweep_report(digits_sweep, tmp_path_factory):
    """The session's 12-run digits sweep (3 hidden × 2 lr × 2 seeds) and its report; the files
    the report logged to the sweep's parent run (compare's other formats log there too)."""
    tmp = tmp_path_factory.mktemp("report")
    uri = digits_sweep.uri
    parent = digits_sweep.parent.info.run_id
    before = {f.path for f in client(uri).list_artifacts(parent, "compare")}
    done = pipeline("compare.py", f"tracking.uri={uri}", "format=html",
                    "ui_url=http://127.0.0.1:5000", cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the latest sweep of the store" in done.stdout  # says which, and why
    [path] = (tmp / "reports").glob("*/report.html")
    logged = {f.path for f in client(uri).list_artifacts(parent, "compare")} - before
    return tmp, uri, path, logged


def test_the_report_is_one_file_logged_to_the_sweeps_parent(sweep_report):
    tmp, uri, path, logged = sweep_report
    text = path.read_text(encoding="utf-8")
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs()[-2000:] in text  # plotly.js itself is in the file, not fetched
    parent = next(r for r in runs_of(uri) if r.data.tags.get("digitlab.jobs"))
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]
    assert logged == {"compare/report.html"}  # the one file, nothing beside it
    assert parent.data.tags["git.commit"] in text and "python pipelines/train.py -m" in text


def test_the_report_renders_offline_in_chromium(browser, sweep_report):
    _, uri, path, _ = sweep_report
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    requests, errors = [], []
    page.route("**/*", lambda route: (requests.append(route.request.url), route.abort())
               if not route.request.url.startswith("file://") else route.continue_())
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_selector("#parallel .plot-container", timeout=30000)
    page.wait_for_selector("#curves .plot-container", timeout=30000)
    assert not errors and not requests, (errors, requests)
    assert page.locator("#runs tbody tr").count() == 12
    assert page.locator("#groups tbody tr").count() == 6  # the 6 configs, seeds grouped
    headers = page.locator("#groups thead th").all_inner_texts()
    assert headers[0] == "config" and "n" in headers and "verdict" in headers
    assert "best_val_accuracy 95 % CI" in headers and "p vs best (Holm)" in headers
    verdicts = page.locator("#groups tbody tr td:last-child").all_inner_texts()
    assert verdicts[0] == "best" and set(verdicts[1:]) <= {"worse",
                                                           "not distinguishable from best"}
    notes = page.locator("#groups-notes").inner_text()
    assert "Holm" in notes and "80 % power" in notes  # the seed budget
    # the swept params are the axes, not the seed; the plots keep their width beside the legend
    axes = page.locator("#parallel .axis-title").all_text_contents()
    assert "seed" not in axes and {"model.hidden", "optim.lr"} <= set(axes), axes
    assert page.locator("#curves .nsewdrag").first.bounding_box()["width"] > 400
    assert "run id" in page.locator("#runs thead th").all_inner_texts()
    assert page.locator("#parallel .parcoords").count() == 1
    assert page.locator("#curves .scatterlayer .trace").count() >= 12  # 6 configs × mean, band
    assert page.locator("#confusion").count() == 1 and page.locator("#per-class tbody tr").count() >= 10
    # each layer's speed of learning, mean ± sd per config (2 layers: the hidden and the output)
    assert page.locator("#layers .plot-container").count() == 1
    assert page.locator("#layers .scatterlayer .trace").count() >= 2 * 6 * 2
    # what the best run learned, where it fails, and its layers, each an image that loaded
    for view in ("#first-layer-weights", "#misclassified", "#layer-curves"):
        assert page.locator(view).evaluate("image => image.naturalWidth") > 300, view
    link = page.locator("#runs tbody tr a").first.get_attribute("href")
    assert link.startswith("http://127.0.0.1:5000/#/experiments/")
    # a click on a header sorts the table by that column
    header = page.locator("#runs thead th", has_text="test_accuracy")
    header.click()
    header.click()
    column = page.locator("#runs thead th").all_inner_texts().index(header.inner_text())
    values = [float(row.locator("td").nth(column).inner_text())
              for row in page.locator("#runs tbody tr").all()]
    assert values == sorted(values, reverse=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "report.png"), full_page=True)
    page.close()


def test_an_unknown_format_is_refused(sweep_report):
    tmp, uri, _, _ = sweep_report
    done = pipeline("compare.py", f"tracking.uri={uri}", "format=pdf", cwd=tmp)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "digitlab: error: format=pdf: expected one of files, html."]


def test_a_reproduce_run_reports_published_against_reproduced(browser, tmp_path):
    uri = store(tmp_path)
    done = pipeline("reproduce.py", "only=[sklearn-digits-sgd,sklearn-digits-momentum]",
                    "seeds=2", "n_jobs=1", f"tracking.uri={uri}", "out=rep",
                    "overrides=['trainer.epochs=2']", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    parent = next(r for r in runs_of(uri, "reproduce") if r.data.tags.get("digitlab.only"))
    done = pipeline("compare.py", f"tracking.uri={uri}", "tracking.experiment=reproduce",
                    f"sweep={parent.info.run_id}", "format=html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "as given by sweep=" in done.stdout
    path = tmp_path / "reports" / parent.info.run_id / "report.html"
    page = browser.new_page()
    errors = []
    page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file://")
               else route.continue_())
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    page.wait_for_selector("#curves .plot-container", timeout=30000)
    assert not errors
    ids = page.locator("#published tbody tr td:first-child").all_inner_texts()
    assert sorted(ids) == ["sklearn-digits-momentum", "sklearn-digits-sgd"]
    assert page.locator("#groups tbody tr").count() == 2  # one per experiment, its 2 seeds grouped
    assert "python pipelines/reproduce.py" in page.locator("#about").inner_text()
    page.close()


def test_the_comparison_figures_have_titles_and_rank_without_a_validation_set():
    import pandas as pd

    from digitlab.comparison import (
        accuracy_by_hidden_figure,
        comparison_table,
        learning_curves_of_best,
    )

    runs = pd.DataFrame({"status": ["FINISHED"] * 2, "params.model.hidden": ["8", "16"],
                         "metrics.train_accuracy": [0.8, 0.9], "run_id": ["a", "b"],
                         "start_time": pd.Timestamp("2026-01-01"),
                         "end_time": pd.Timestamp("2026-01-01 00:01")})
    table = comparison_table(runs)  # no validation or test accuracy: ranked by training's
    assert table["run_id"].tolist() == ["b", "a"]
    figure = accuracy_by_hidden_figure(table)
    assert figure.axes[0].get_title().startswith("train accuracy by hidden size")
    curves = learning_curves_of_best({"b": {"train_accuracy": [0.5, 0.9]}})
    assert curves.axes[0].get_title() == "Learning curves of the best 1 run(s)"


def test_all_runs_says_when_it_pools_epoch_counts(tmp_path):
    uri = store(tmp_path)
    for epochs in ("2", "3"):
        done = pipeline("train.py", f"trainer.epochs={epochs}", "tracking.log_model=false",
                        f"tracking.uri={uri}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
    done = pipeline("compare.py", f"tracking.uri={uri}", "all_runs=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "all_runs=true pools runs of 2 different epoch counts (2, 3)" in done.stdout


def test_a_search_study_reports_its_trials(tmp_path):
    uri, storage = store(tmp_path), f"sqlite:///{tmp_path / 'optuna.db'}"
    done = pipeline("search.py", "n_trials=3", "study=s", f"storage={storage}",
                    f"tracking.uri={uri}", "~space.trainer", "overrides=['trainer.epochs=2']",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    parent = next(r for r in runs_of(uri, "search") if "mlflow.parentRunId" not in r.data.tags)
    done = pipeline("compare.py", f"tracking.uri={uri}", "tracking.experiment=search",
                    f"sweep={parent.info.run_id}", "format=html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (tmp_path / "reports" / parent.info.run_id / "report.html").read_text()
    assert "python pipelines/search.py study=s n_trials=3" in text
    assert text.count('<tr><td>trial ') == 3  # one row per trial in "Every run"
    # Optuna's own figures of the study, inlined like the others
    assert 'id="study"' in text and "Optimization History Plot" in text
    assert "Hyperparameter Importances" in text


def test_values_are_escaped_once():
    import pandas as pd

    from digitlab.report import About, render

    runs = pd.DataFrame({"status": ["FINISHED"], "run_id": ["r1"], "experiment_id": ["1"],
                         "tags.mlflow.runName": ["a<b & c"], "params.seed": ["0"],
                         "metrics.test_accuracy": [0.9], "start_time": pd.Timestamp("2026-01-01"),
                         "end_time": pd.Timestamp("2026-01-01 00:01")})
    page = render(runs, {}, About("t", "python x", "abc", "now", []))
    assert "a&lt;b &amp; c" in page and "&amp;lt;" not in page
