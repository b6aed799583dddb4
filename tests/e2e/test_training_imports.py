"""Which layers import MLflow and Hydra: each module imported alone, in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys

GLUE, TRACKING = "digitlab.cli", ("digitlab.tracking", "digitlab.server")

# One fresh interpreter imports the libraries every layer builds on (and checks that none of them
# brings in MLflow or Hydra), then forks once per module: each child imports its module alone
# and says which of the two it finds loaded. A fork costs milliseconds where a fresh interpreter
# per module pays seconds of the same library imports again.
EACH_MODULE_ALONE = """
import importlib, json, os, sys
import matplotlib, numba, numpy, pandas, scipy.stats, sklearn.model_selection
WATCHED = {"mlflow", "hydra"}
def loaded():
    return sorted({m.split(".")[0] for m in sys.modules} & WATCHED)
assert not loaded(), loaded()
found = {}
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            os.write(write, json.dumps(loaded()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        said = answer.read()
    os.waitpid(pid, 0)
    found[name] = json.loads(said) if said else "the import failed"
print(json.dumps(found))
"""


def test_library_imports_neither_mlflow_nor_hydra():
    """Every module of the package, each imported alone: below the glue none imports Hydra,
    and none imports MLflow but the tracking modules."""
    import pkgutil

    import digitlab

    names = [m.name for m in pkgutil.walk_packages(digitlab.__path__, "digitlab.")]
    assert GLUE in names and len(names) > 25
    done = subprocess.run([sys.executable, "-c", EACH_MODULE_ALONE, *names], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert sorted(found) == sorted(names)
    for name, imported in found.items():
        allowed = {"hydra"} if name.startswith(GLUE) else set()
        if name.startswith(TRACKING) or name.startswith(GLUE):
            allowed.add("mlflow")
        assert isinstance(imported, list) and set(imported) <= allowed, f"{name} imports {imported}"


def test_a_tracked_run_loads_at_most_30_digitlab_modules(tmp_path):
    """What one run of train.py pays for digitlab itself: the modules it loads (a sweep's
    halving, the statistics, the reports' HTML are not among them)."""
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "pipelines" / "train.py"
    done = subprocess.run([sys.executable, "-X", "importtime", str(script), "trainer.epochs=1",
                           f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
                           "tracking.log_model=false"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
              if line.startswith("import time:") and line.count("|") == 2}
    ours = sorted(m for m in loaded if m == "digitlab" or m.startswith("digitlab."))
    assert "digitlab.runner" in ours and len(ours) <= 30, ours
