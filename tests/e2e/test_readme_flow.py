"""The README's "Register, serve and submit" commands, run as written, in order, on a fresh
store after a sweep of the digits (make run's, shorter): register, the pixels for `mlflow models
predict`, the labelled file for predict.py, the submission."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pandas as pd
import pytest

from conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def readme_block(heading: str) -> list[str]:
    """The shell commands of the first code block under `heading`, continuation lines joined;
    commands with a <placeholder> left out."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = block.replace("\\\n", " ").splitlines()
    return [c.split("  #")[0].strip() for c in commands if c.strip() and "<" not in c]


def test_the_readmes_register_predict_flow_runs_as_written(tmp_path):
    for name in ("pipelines", "conf"):  # a checkout of its own, so its own mlruns/
        shutil.copytree(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    # as on a fresh shell: no store named by the environment, no project found by another
    # command of this test session (DIGITLAB_PROJECT)
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("MLFLOW_") and k != "DIGITLAB_PROJECT"}
    sweep = subprocess.run([".venv/bin/python", "pipelines/train.py", "-m", "model.hidden=16,32",
                            "seed=0,1", "trainer.epochs=5"], cwd=tmp_path, env=environment,
                           capture_output=True, text=True, timeout=600)
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    commands = readme_block("## Register, serve and submit")
    assert any("predict.py" in c for c in commands) and any("mlflow models" in c for c in commands)
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (command, done.stderr[-2000:])
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert submission.columns.tolist() == ["ImageId", "Label"] and len(submission) == 1797
    labels = pd.read_csv(tmp_path / "digits.csv")["label"]
    assert (submission["Label"] == labels).mean() > 0.9
