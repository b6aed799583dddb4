"""The README, followed top to bottom on a fresh store as a newcomer types it: `make run`'s
commands, then every command of "Train and sweep", "Compare" and "Register, serve and submit",
in order. Each must do visible work (train something new, compare what was just run, register,
predict), say what it did in at most 15 lines, and the claims the README makes about their
output must hold."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import FASHION_ROOT, ROOT, write_idx_set, write_kaggle_csv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

# progress as it goes, not what the command did: a single run's epochs (a bar in a terminal),
# a sweep's line per run ([3/9, ≈ 0 min 05 s left] hidden=64 seed=2: …)
PROGRESS = re.compile(r"^(epoch \d+/\d+|\[\d+/\d+[,\]])")


def readme_block(heading: str, index: int = 0) -> list[str]:
    """The shell commands of the `index`-th code block under `heading`, continuation lines
    joined, comments cut."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section
    block = re.findall(r"```bash\n(.*?)```", section, re.S)[index]
    commands = block.replace("\\\n", " ").splitlines()
    return [c.split("  #")[0].strip() for c in commands if c.strip()]


def make_run_commands() -> list[str]:
    """The recipe of the Makefile's run target, as make runs it from the project's folder."""
    recipe = re.search(r"^run: .*?\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    return [line.strip().replace("$(PY)", ".venv/bin/python") for line in recipe.splitlines()
            if line.strip().startswith("$(PY)")]


class Newcomer:
    """A checkout of its own (its own mlruns/, outputs/, reports/) and a fresh shell."""

    def __init__(self, folder: Path):
        for name in ("pipelines", "conf"):
            shutil.copytree(ROOT / name, folder / name)
        (folder / ".venv").symlink_to(ROOT / ".venv")
        self.folder = folder
        # no store named by the environment, no project found by another test's command
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("MLFLOW_") and k != "DIGITLAB_PROJECT"}

    def types(self, command: str) -> str:
        done = subprocess.run(command, shell=True, cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        shown = [line for line in done.stdout.splitlines() if not PROGRESS.match(line)]
        if any(" config " in line for line in shown):  # compare's table: a row a config
            header = next(i for i, line in enumerate(shown) if " config " in line)
            shown = shown[:header + 1] + shown[shown.index("", header):]
        assert len(shown) <= 15, (command, "\n".join(shown))
        return done.stdout


def sweep_parent(said: str) -> str:
    return re.search(r"\(parent run ([0-9a-f]{32})\)", said).group(1)


def test_the_readme_followed_in_order_does_what_it_says(tmp_path):
    user = Newcomer(tmp_path / "digitlab")
    mnist = write_idx_set(tmp_path / "mnist", n_train=10_200)  # MNIST holds out 10,000 rows
    train_csv = write_kaggle_csv(tmp_path / "train.csv", n=300)

    # make run: the sweep, then the comparison whose rows the README shows
    sweep, compared = make_run_commands()
    said = user.types(sweep)
    assert "12 finished, 0 skipped" in said
    said = user.types(compared)
    assert "12 runs of" in said
    table = pd.read_csv(next((user.folder / "reports").glob("*/table.csv")))
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"^\| (hidden=\S+ lr=\S+) +\| +(\d+) \| (0\.\d{4}) ± 0\.\d{4} .*\| "
                       r"([a-z ]+?) +\|$", readme, re.M)
    assert len(shown) == 3, "the README's example table"
    same = True  # another BLAS kernel may move a mean by an image or two (docs/reproduction.md)
    for config, n, mean, verdict in shown:
        row = table[table["config"] == config].iloc[0]
        assert (row["n"], row["verdict"]) == (int(n), verdict), config
        assert row["best_val_accuracy_mean"] == pytest.approx(float(mean), abs=0.02), config
        same &= f"{row['best_val_accuracy_mean']:.4f}" == mean
    if same:  # the seed budget the README quotes is that of these numbers
        budget = re.search(r"nothing\s+beats noise: (\d+) seeds per config", readme).group(1)
        assert f": {budget} seeds per config" in said

    # Train and sweep: each command trains something new
    for command in readme_block("## Train and sweep"):
        if "data=fashion_mnist" in command and not FASHION_ROOT.exists():
            continue  # its own tests say why (conftest.needs_fashion)
        command = command.replace("/path/to/mnist", str(mnist))
        said = user.types(command.replace("/path/to/train.csv", str(train_csv)))
        assert "already FINISHED as run" not in said or " -m " in command, command
        if " -m " in command:
            assert re.search(r": [1-9]\d* finished", said), (command, said)
        if "seed=0,1,2" in command:  # the README: "9 runs, 4 reused from make run"
            assert "5 finished, 4 skipped (already FINISHED)" in said
            nine = sweep_parent(said)

    # Compare: the latest sweep is the 9-run sweep just run, its reused runs counted
    latest, html, given, every = readme_block("## Compare")[:4]
    said = user.types(latest)
    assert f"({nine}, started" in said and "9 run(s), 4 of them reused" in said
    assert "9 runs of" in said and "hidden=256" in said
    said = user.types(html)
    assert (user.folder / "reports" / nine / "report.html").stat().st_size > 100_000
    said = user.types(given.replace("<parent run id>", nine))
    assert "as given by sweep=" in said
    said = user.types(every)
    assert "hidden=100 lr=0.5 epochs=30" in said and "kaggle_csv  " in said  # every dataset
    configs, runs = readme_block("## Compare", 1)
    said = user.types(configs)
    assert said.startswith("hidden=256 reached a mean best_val_accuracy") and "3 seed(s)" in said
    children = pd.read_csv(user.folder / "reports" / nine / "runs.csv")
    two = children.drop_duplicates("model.hidden")["run_id"].tolist()[:2]
    said = user.types(runs.replace("<run id>", two[0], 1).replace("<run id>", two[1], 1))
    assert "McNemar" in said

    # Register, serve and submit: the best run of the latest sweep, served and used
    for command in readme_block("## Register, serve and submit"):
        said = user.types(command)
    submission = pd.read_csv(user.folder / "submission.csv")
    assert submission.columns.tolist() == ["ImageId", "Label"] and len(submission) == 1797
    labels = pd.read_csv(user.folder / "digits.csv")["label"]
    assert (submission["Label"] == labels).mean() > 0.9
