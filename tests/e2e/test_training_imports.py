"""Which layers import MLflow and Hydra, each module imported in a fresh process."""

from __future__ import annotations

import subprocess
import sys

GLUE, TRACKING = "digitlab.cli", ("digitlab.tracking", "digitlab.server")


def test_library_imports_neither_mlflow_nor_hydra():
    """Every module of the package, each in a fresh process: below the glue none imports Hydra,
    and none imports MLflow but the tracking modules."""
    import ast
    import pkgutil

    import digitlab

    names = [m.name for m in pkgutil.walk_packages(digitlab.__path__, "digitlab.")]
    assert GLUE in names and len(names) > 25
    code = ("import importlib, sys\n"
            "importlib.import_module(sys.argv[1])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'hydra'}))\n")
    for name in names:
        out = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True,
                             check=True).stdout.strip()
        allowed = {"hydra"} if name.startswith(GLUE) else set()
        if name.startswith(TRACKING) or name.startswith(GLUE):
            allowed.add("mlflow")
        assert set(ast.literal_eval(out)) <= allowed, f"{name} imports {out}"
