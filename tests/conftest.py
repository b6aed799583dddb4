"""Shared fixtures: small real data and helpers that write data files for the loader tests."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION_ROOT / "train-images-idx3-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist is not installed (.ci/run installs it)",
)


E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items):
    """The tests under tests/e2e/ run real commands, each in a subprocess: they are marked e2e
    (make test-fast leaves them out)."""
    for item in items:
        if E2E in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    # every test and every fixture of the whole run parses into a cache of this test run, never
    # the user's ~/.cache; and the test process has a command's settings (MLflow's telemetry off)
    from digitlab.cli.project import PROCESS_DEFAULTS

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGITLAB_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        for name, value in PROCESS_DEFAULTS.items():
            if name not in os.environ:
                patch.setenv(name, value)
        yield


def alive(pid: int) -> bool:
    """A process that runs: neither gone nor a zombie."""
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether process `pid` ended within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def dead_pid() -> str:
    """The pid of a process that has ended (a run's recorded process that died)."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return str(ended.pid)


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(root: Path, n_train: int = 120, n_test: int = 40, gz: bool = True,
                  seed: int = 0) -> Path:
    """Four IDX files of a small synthetic MNIST stand-in: each class a bright block."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, (n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 * label: 2 * label + 6, 4:24] = 230
        for kind, array, magic in (("images-idx3", images, 2051), ("labels-idx1", labels, 2049)):
            data = idx_bytes(array, magic)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (root / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (root / name).write_bytes(data)
    return root


def write_kaggle_csv(path: Path, n: int = 60, labeled: bool = True, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    pixels = rng.integers(0, 40, (n, 784))
    for i, label in enumerate(labels):
        pixels[i, 56 * label: 56 * label + 112] = 230
    header = (["label"] if labeled else []) + [f"pixel{i}" for i in range(784)]
    rows = [",".join(header)]
    for label, row in zip(labels, pixels):
        cells = ([str(label)] if labeled else []) + [str(v) for v in row]
        rows.append(",".join(cells))
    path.write_text("\n".join(rows) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Waits for a server's /health; fails with the end of its log if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the server at {url} did not come up: {log.read_text()[-2000:]}")
        time.sleep(0.5)


# the pipelines as a user runs them: a subprocess per command where the process is what is
# tested (exit code of the interpreter, signals, workers, imports), in this process otherwise
def pipeline_process(script: str, *args: str, cwd: Path,
                     env: dict | None = None) -> subprocess.CompletedProcess:
    """`python pipelines/<script> <args>` in `cwd`, a process of its own."""
    environment = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    environment.pop("MLFLOW_TRACKING_URI", None)
    environment.pop("PYTEST_CURRENT_TEST", None)  # MLflow changes behaviour under pytest
    return subprocess.run([sys.executable, str(ROOT / "pipelines" / script), *args], cwd=cwd,
                          capture_output=True, text=True, env=environment, timeout=900)


def pipeline(script: str, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python pipelines/<script> <args>` in `cwd`, run in this process (no interpreter to start,
    no imports to pay again): the script runs as __main__ with that command line, working folder
    and environment, and what it wrote to file descriptors 1 and 2 (its joblib workers' lines
    among them) and its exit code come back as a subprocess would give them."""
    from in_process import run_script

    return run_script(ROOT / "pipelines" / script, list(args), cwd=cwd, env=env)


def identical_sweeps_at_once(cwd: Path, *overrides: str, count: int = 2) -> None:
    """`count` identical `train.py -m <overrides>` started together, each a process of its own
    (their concurrency is what is tested); each must exit 0."""
    args = [sys.executable, str(ROOT / "pipelines" / "train.py"), "-m", *overrides]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    procs = [subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(count)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]


def store(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}"


def sweep_into(tmp: Path, *overrides: str) -> tuple[str, subprocess.CompletedProcess]:
    """`train.py -m <overrides>` into a fresh store under `tmp`: its URI and the result."""
    uri = store(tmp)
    done = pipeline("train.py", "-m", *overrides, f"tracking.uri={uri}", cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    return uri, done


DIGITS_SWEEP = ("model.hidden=8,16,32", "optim.lr=0.1,0.5", "seed=0,1", "trainer.epochs=4")


@pytest.fixture(scope="session")
def digits_sweep(tmp_path_factory) -> SimpleNamespace:
    """The store most tests read, built once a test session: `make run`'s sweep made smaller,
    3 hidden sizes × 2 learning rates × 2 seeds (12 runs: 6 configs of 2 seeds, so every table,
    verdict, figure and report has configs to rank and seeds to group, and the best run by
    validation accuracy is a real choice), 4 epochs (curves with a best epoch to find), each run
    with its pyfunc model (registering, serving, predicting). Tests read it; what they add to it
    (a registered model, compare's files under the parent run) no other test reads. Their own
    files go to their own tmp_path."""
    folder = tmp_path_factory.mktemp("digits-sweep")
    uri, done = sweep_into(folder, *DIGITS_SWEEP)
    runs = runs_of(uri)
    return SimpleNamespace(folder=folder, uri=uri, done=done,
                           parent=next(r for r in runs if "digitlab.jobs" in r.data.tags),
                           children=[r for r in runs if "mlflow.parentRunId" in r.data.tags])


def sweep_digits_and_a_kaggle_csv(tmp: Path, epochs: int) -> str:
    """Two sweeps of two seeds into a fresh store under `tmp`: the digits, then a Kaggle CSV
    (each dataset its own MLflow experiment); the store's URI."""
    uri = store(tmp)
    csv = write_kaggle_csv(tmp / "train.csv", n=120)
    for data in (["data=digits"], ["data=kaggle_csv", f"data.path={csv}"]):
        done = pipeline("train.py", "-m", *data, "seed=0,1", f"trainer.epochs={epochs}",
                        "tracking.log_model=false", f"tracking.uri={uri}", cwd=tmp)
        assert done.returncode == 0, done.stderr[-2000:]
    return uri


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def runs_of(uri: str, experiment: str | None = None):
    """The runs of `experiment`, or of every experiment (each dataset has its own)."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return []  # a client here would make the store that the command under test is making
    c = client(uri)
    if experiment is None:
        ids = [e.experiment_id for e in c.search_experiments()]
    else:
        found = c.get_experiment_by_name(experiment)
        ids = [] if found is None else [found.experiment_id]
    return c.search_runs(ids, max_results=1000) if ids else []


# Debian's chromium driven by Playwright (no browser download), for the UI and report tests
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


def _browser_missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium, or a skip (a failure under DIGITLAB_REQUIRE_BROWSER) without one."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("DIGITLAB_REQUIRE_BROWSER"):
            pytest.fail(f"browser tests required but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()
