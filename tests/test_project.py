"""The project root: found from the command's script or the working folder, handed to workers,
and a clear one-line refusal where neither is a checkout."""

from __future__ import annotations

import pytest

from conftest import ROOT
from digitlab.cli import project


@pytest.fixture()
def no_handed_root(monkeypatch):
    monkeypatch.delenv(project.PROJECT_ENV, raising=False)


def _checkout(folder):
    (folder / "conf").mkdir(parents=True)
    (folder / "conf" / "train.yaml").write_text("defaults: []\n")
    (folder / "pipelines").mkdir()
    return folder


def test_the_script_names_its_checkout(tmp_path, no_handed_root):
    checkout = _checkout(tmp_path / "other")
    found = project.find_project_root(str(checkout / "pipelines" / "train.py"), tmp_path,
                                      installed=tmp_path / "nowhere")
    assert found == checkout.resolve()


def test_the_working_folder_when_the_script_is_elsewhere(tmp_path, no_handed_root):
    checkout = _checkout(tmp_path / "here")
    found = project.find_project_root(str(tmp_path / "notebook.py"), checkout,
                                      installed=tmp_path / "nowhere")
    assert found == checkout.resolve()


def test_a_worker_finds_the_checkout_its_command_found(tmp_path, no_handed_root, monkeypatch):
    checkout = _checkout(tmp_path / "driver")
    project.find_project_root(str(checkout / "pipelines" / "train.py"), tmp_path,
                              installed=tmp_path / "nowhere")
    # a joblib or Ray worker: another script, another working folder
    found = project.find_project_root(str(tmp_path / "worker.py"), tmp_path / "elsewhere",
                                      installed=tmp_path / "nowhere")
    assert found == checkout.resolve()


def test_neither_is_one_line_and_exit_2(tmp_path, no_handed_root, capsys):
    with pytest.raises(SystemExit) as stopped:
        project.find_project_root(str(tmp_path / "x.py"), tmp_path, installed=tmp_path / "no")
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a digitlab project (no conf/train.yaml)" in err


def test_this_checkout_is_the_root_of_the_test_run():
    assert project.PROJECT_ROOT == ROOT and project.CONF_DIR == ROOT / "conf"
