"""The MLflow UI in a real browser: `mlflow ui` on a free loopback port over a store holding a
real digits sweep, driven by headless Chromium (Debian's) through Playwright. Screenshots go to
test-output/ui/ (or $DIGITLAB_TEST_OUTPUT/ui/)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, client, free_port, runs_of, wait_healthy

SHOTS = Path(os.environ.get("DIGITLAB_TEST_OUTPUT", ROOT / "test-output")) / "ui"
pytestmark = pytest.mark.timeout(600)
SWEEP_NAME = "hidden×lr×seed, 12 runs"  # the parent run of conftest.DIGITS_SWEEP


@pytest.fixture(scope="module")
def ui(digits_sweep, tmp_path_factory):
    """The session's 12-run digits sweep (hidden × lr × seed), and `mlflow ui` serving it."""
    tmp = tmp_path_factory.mktemp("ui")
    uri = digits_sweep.uri
    [printed] = [line.rsplit(" /", 1)[1] for line in digits_sweep.done.stdout.splitlines()
                 if line.startswith("see its runs:")]
    port = free_port()
    log = open(tmp / "ui.log", "w")
    # its own session: mlflow ui forks workers, and only killing the group stops them all
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", uri,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, server, tmp / "ui.log", timeout=120)
        experiment = client(uri).get_experiment_by_name("digitlab-digits").experiment_id
        yield base, experiment, runs_of(uri), printed, uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def runs_page(browser, base: str, experiment: str):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    # /#/experiments/<id> opens a GenAI overview; the runs table is under /runs
    page.goto(f"{base}/#/experiments/{experiment}/runs?workflowType=machine_learning")
    page.get_by_role("link", name=SWEEP_NAME).first.wait_for(timeout=60000)
    close = page.get_by_role("button", name="Close")  # the assistant panel covers a third
    if close.count():
        close.first.click()
    return page


def show_columns(page, names: list[str]) -> None:
    page.get_by_role("button", name="Columns", exact=True).click()
    search = page.get_by_placeholder("Search columns")
    for name in names:
        search.fill(name)
        page.get_by_text(name, exact=True).first.click()
    page.keyboard.press("Escape")


def test_the_sweep_shows_its_runs_grouped_with_params_and_metrics(browser, ui):
    base, experiment, runs, *_ = ui
    page = runs_page(browser, base, experiment)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    parent_link = page.get_by_role("link", name=parent.info.run_name)
    expect_visible(parent_link)
    # children are folded under their parent until it is expanded
    page.get_by_role("row").filter(has=parent_link).locator(
        "button[data-component-id*=runnamecellrenderer]").click()
    for child in children:
        expect_visible(page.get_by_role("link", name=child.info.run_name, exact=True))
    show_columns(page, ["model.hidden", "optim.lr", "test_accuracy"])
    for header in ("model.hidden", "optim.lr", "test_accuracy"):
        expect_visible(page.get_by_role("columnheader", name=header).first)
    run = next(c for c in children if c.info.run_name == "hidden=32 lr=0.5 seed=0")
    shown = row_text(page, run.info.run_name)
    accuracy = f"{run.data.metrics['test_accuracy']:.4f}"[:5]  # the UI truncates long numbers
    assert accuracy in shown and "32" in shown and "0.5" in shown, shown
    screenshot(page, "runs.png")


def test_two_runs_open_in_the_compare_view(browser, ui):
    base, experiment, runs, *_ = ui
    page = runs_page(browser, base, experiment)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    page.get_by_role("row").filter(has=page.get_by_role("link", name=parent.info.run_name)).locator(
        "button[data-component-id*=runnamecellrenderer]").click()
    picked = ["hidden=8 lr=0.1 seed=0", "hidden=32 lr=0.5 seed=1"]
    for name in picked:
        link = page.get_by_role("link", name=name, exact=True)
        link.wait_for()
        page.get_by_role("row").filter(has=link).get_by_role("checkbox").check()
    page.get_by_role("button", name="Compare", exact=True).click()
    expect_visible(page.get_by_text("Comparing 2 Runs from 1 Experiment"))
    expect_visible(page.get_by_text("Parallel Coordinates Plot"))
    for axis in ("model.hidden", "optim.lr"):  # the swept params become the plot's axes
        expect_visible(page.locator("svg text", has_text=axis).first)
    for name in picked:
        expect_visible(page.get_by_text(name, exact=True).first)
    assert "compare-runs" in page.url
    ids = {r.info.run_id for r in runs if r.info.run_name in picked}
    assert all(run_id in page.url for run_id in ids)
    screenshot(page, "compare.png")


def row_text(page, run_name: str) -> str:
    """Every cell of the run's row: the grid draws pinned and scrolling columns as separate
    row elements that share a row-index."""
    link = page.get_by_role("link", name=run_name, exact=True)
    index = page.get_by_role("row").filter(has=link).first.get_attribute("row-index")
    return " ".join(page.locator(f"[role=row][row-index='{index}']").all_inner_texts())


def expect_visible(locator) -> None:
    from playwright.sync_api import expect

    expect(locator).to_be_visible(timeout=30000)


def screenshot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)  # let the grid settle its column widths
    page.screenshot(path=str(SHOTS / name))
    assert (SHOTS / name).stat().st_size > 10_000
    page.close()


def test_make_ui_takes_its_port_from_ui_port():
    done = subprocess.run(["make", "-n", "ui", "UI_PORT=5123"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert "--host 127.0.0.1 --port 5123" in done.stdout
    # before it serves, the store at a glance and the latest sweep's link, on that port
    assert "UI_PORT=5123 .venv/bin/python pipelines/status.py reap=false" in done.stdout


def test_a_runs_page_lists_its_per_layer_metrics(browser, ui):
    base, experiment, runs, *_ = ui
    run = next(r for r in runs if r.info.run_name == "hidden=32 lr=0.5 seed=0")
    assert {"layer1.grad_b_norm", "layer2.grad_b_norm", "layer1.saturated"} <= set(run.data.metrics)
    page = run_page(browser, base, experiment, run.info.run_id)
    for name in ("layer1.grad_b_norm", "layer1.saturated", "layer2.grad_w_norm"):
        expect_visible(page.get_by_text(name, exact=True).first)
    screenshot(page, "run-layers.png")


def run_page(browser, base: str, experiment: str, run_id: str):
    """A run's page as the link a single run prints opens it: in the model-training view (the
    GenAI view's Judges and Sessions absent), the assistant panel closed."""
    from digitlab.tracking.store import ui_path

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{base}/{ui_path(experiment, run_id)}")
    expect_visible(page.get_by_role("tab", name="Model metrics"))
    assert page.get_by_text("Judges", exact=True).count() == 0
    close = page.get_by_role("button", name="Close")
    if close.count():
        close.first.click()
    return page


def test_a_runs_learning_curves_are_two_clicks_away(browser, ui):
    """MLflow orders a run's charts by name and offers no public way to order them: the docs
    show the two clicks (Model metrics, then 'accuracy' in its search), taken here."""
    base, experiment, runs, *_ = ui
    run = next(r for r in runs if r.info.run_name == "hidden=32 lr=0.5 seed=0")
    page = run_page(browser, base, experiment, run.info.run_id)
    page.get_by_role("tab", name="Model metrics").click()
    page.get_by_placeholder("Search metric charts").fill("accuracy")
    for name in ("train_accuracy", "val_accuracy", "test_accuracy"):
        expect_visible(page.get_by_text(name, exact=True).first)
    assert page.get_by_text("layer1.grad_b_norm", exact=True).count() == 0
    screenshot(page, "run-curves.png")


def test_the_printed_link_opens_on_the_sweeps_runs(browser, ui):
    """The experiment is a model-training one as MLflow's UI reads it, and the link the sweep
    printed opens on its runs: the parent named by what it sweeps, not a GenAI overview."""
    base, experiment, runs, printed, uri = ui
    tags = client(uri).get_experiment(experiment).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert printed == f"#/experiments/{experiment}/runs?workflowType=machine_learning"
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{base}/{printed}")
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.run_name == SWEEP_NAME
    expect_visible(page.get_by_role("link", name=parent.info.run_name))
    assert page.get_by_text("Token usage").count() == 0
    screenshot(page, "first-screen.png")
    page.close()
