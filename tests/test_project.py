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


def test_a_worker_finds_the_checkout_its_command_hands_it(tmp_path, no_handed_root,
                                                         monkeypatch):
    from omegaconf import OmegaConf

    ray = OmegaConf.load(ROOT / "conf" / "hydra" / "launcher" / "ray_cluster.yaml")
    assert ray.ray.init.runtime_env.env_vars[project.PROJECT_ENV] == str(ROOT)
    checkout = _checkout(tmp_path / "driver")
    # a Ray worker: another script, another working folder, the checkout handed down by
    # conf/hydra/launcher/ray_cluster.yaml
    monkeypatch.setenv(project.PROJECT_ENV, str(checkout))
    found = project.find_project_root(str(tmp_path / "worker.py"), tmp_path / "elsewhere",
                                      installed=tmp_path / "nowhere")
    assert found == checkout


def test_neither_is_one_line_and_exit_2(tmp_path, no_handed_root, capsys):
    with pytest.raises(SystemExit) as stopped:
        project.find_project_root(str(tmp_path / "x.py"), tmp_path, installed=tmp_path / "no")
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a digitlab project (no conf/train.yaml)" in err


def test_this_checkout_is_the_root_of_the_test_run():
    assert project.project_root() == ROOT and project.conf_dir() == ROOT / "conf"


def test_importing_any_module_changes_nothing_outside_it(tmp_path):
    """From a folder that is no checkout: every digitlab module (and the sweeper plugin)
    imported, not one environment variable set, no exit, no file written."""
    import subprocess
    import sys

    code = """
import os, pkgutil, importlib, json, sys
import sklearn, mlflow  # their imports set variables of their own (KMP_*, a session id)
before = dict(os.environ)
import digitlab, hydra_plugins.digitlab_sweeper.sweeper
names = [m.name for m in pkgutil.walk_packages(digitlab.__path__, "digitlab.")]
for name in names:
    importlib.import_module(name)
changed = sorted(k for k in {**before, **os.environ} if before.get(k) != os.environ.get(k))
print(json.dumps({"modules": len(names), "changed": changed}))
"""
    env = {k: v for k, v in __import__("os").environ.items()
           if not k.startswith(("MLFLOW_", "DO_NOT_TRACK")) and k != project.PROJECT_ENV}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["modules"] > 40 and found["changed"] == [], found
    assert list(tmp_path.iterdir()) == []
