"""The recipes whose bits are pinned (tests/test_golden.py): short digits runs that cover every
engine, activation, output, loss, optimizer, init, order, dtype and the blog network's
derivative quirk, and every published recipe's resolved config.

    .venv/bin/python tests/golden/recipes.py     # records digests.json for this machine

Recording is a deliberate act: its commit says why the numbers moved, and docs/reproduction.md's
changelog of numeric changes gets a line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGESTS = Path(__file__).with_name("digests.json")
SMALL = ["trainer.epochs=2", "model.hidden=[12]", "tracking=off"]
RECIPES = {
    "sgd-sigmoid-softmax": [],
    "reference-engine": ["trainer.engine=reference"],
    "batch-1-compiled": ["trainer.batch_size=1", "trainer.engine=auto"],
    "batch-1-numpy": ["trainer.batch_size=1", "trainer.engine=numpy"],
    "tanh-quadratic-glorot": ["model.activation=tanh", "model.output=tanh",
                              "model.loss=quadratic", "model.init=glorot_uniform"],
    "relu-adam-fan-in": ["model.activation=relu", "model.init=normal_fan_in", "optim=adam"],
    "nesterov-l2-exponential-float64": ["optim.momentum=0.9", "optim.nesterov=true",
                                        "optim.l2=0.001", "optim.schedule=exponential",
                                        "optim.gamma=0.9", "trainer.order=random",
                                        "trainer.dtype=float64"],
    "blog-quirk-uniform": ["model.output=sigmoid", "model.loss=quadratic", "model.init=uniform",
                           "model.derivative_quirk=true"],
    "identity-binary-ce-halving": ["model.activation=identity", "model.output=sigmoid",
                                   "model.loss=binary_ce", "model.init=normal_fan_out",
                                   "model.output_init=zero", "optim.schedule=halving",
                                   "optim.l2=0.001", "optim.l2_style=sklearn",
                                   "trainer.order=file", "model.hidden=[12,8]", "optim.lr=0.01"],
}


def environment() -> str:
    """The NumPy and BLAS a recipe's bits belong to."""
    from digitlab import tags
    from digitlab.config import RunConfig
    from digitlab.runner import numerics

    env = numerics(RunConfig())
    return f"numpy {env[tags.NUMPY]}, {env[tags.BLAS]}"


def compose(*jobs: list[str]) -> list:
    """The typed config of each job's overrides, as train.py composes it."""
    from hydra import compose, initialize_config_dir

    from digitlab.cli.preflight import to_run_config, without_hydra_node

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return [to_run_config(without_hydra_node(compose(config_name="train", overrides=o,
                                                         return_hydra_config=True)))
                for o in jobs]


def weights_digest(overrides: list[str]) -> str:
    """The SHA-256 of the final weights the recipe trains to."""
    from digitlab.data.cache import array_digest
    from digitlab.nn.classifier import Classifier
    from digitlab.runner import load_split, with_resolved_threads
    from digitlab.training import train

    [cfg] = compose([*SMALL, *overrides])
    cfg = with_resolved_threads(cfg)
    clf = Classifier(cfg.model, cfg.optim, cfg.trainer, cfg.seed)
    for _ in train(clf, load_split(cfg)):
        pass
    state = clf.network.state()
    return array_digest(*(state[k] for k in sorted(state)))


def config_digests() -> dict[str, str]:
    """Each published recipe's identity without its data (runner.config_hash): what it trains
    (the blog network's recipes name a train.csv: one fixed name here)."""
    from digitlab.runner import config_hash

    names = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
    configs = compose(*([f"experiment={name}", "data.path=train.csv"] for name in names))
    return {name: config_hash(cfg, "") for name, cfg in zip(names, configs)}


def record() -> dict:
    found = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {"weights": {}}
    found["weights"][environment()] = {name: weights_digest(o) for name, o in RECIPES.items()}
    found["configs"] = config_digests()
    return found


if __name__ == "__main__":
    import digitlab

    digitlab.prepare_blas()
    DIGESTS.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
    print(f"recorded {DIGESTS} for {environment()}", file=sys.stderr)
