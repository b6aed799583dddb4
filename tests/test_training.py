"""The training loop on real data: accuracy floors on the digits and Fashion-MNIST, records,
early stopping, divergence; evaluation reports and figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_fashion
from digitlab.config import ConfigError, DataConfig, ModelConfig, OptimConfig, TrainerConfig
from digitlab.data import load_dataset, make_split
from digitlab.figures import confusion_matrix_figure, evaluate, learning_curves_figure
from digitlab.nn.classifier import Classifier
from digitlab.nn.init import seed_streams
from digitlab.training import TrainingDiverged, train


def _split(cfg=None, seed=0):
    cfg = cfg or DataConfig()
    return make_split(load_dataset(cfg), cfg, seed_streams(seed).split)


def test_digits_64_32_10_reaches_95_percent():
    split = _split()
    clf = Classifier(ModelConfig(hidden=[32]), OptimConfig(lr=0.5), TrainerConfig(epochs=30),
                     seed=0)
    records = list(train(clf, split))
    assert [r.epoch for r in records] == list(range(1, 31))
    assert clf.network.weights[0].shape == (64, 32)
    assert clf.score(split.x_test, split.y_test) >= 0.95
    assert records[-1].train_accuracy > records[0].train_accuracy
    assert {k for k in records[0].metrics() if not k.startswith("layer")} == {
        "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds"}
    best = max(records, key=lambda r: r.val_accuracy)
    assert best.improved


@pytest.mark.parametrize("batch_size,hidden", [(10, [64]), (128, [256, 128])])
def test_the_blas_thread_count_changes_no_bit_of_the_weights(batch_size, hidden):
    """Why trainer.blas_threads is not part of a run's identity (config.NOT_TRAINED_BY): the same
    config trained with 1 and 2 BLAS threads ends with the same weights, bit for bit."""
    from threadpoolctl import threadpool_limits

    split = _split()
    states = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            clf = Classifier(ModelConfig(hidden=hidden), OptimConfig(lr=0.5),
                             TrainerConfig(epochs=3, batch_size=batch_size), seed=0)
            list(train(clf, split))
        states.append(clf.network.state())
    assert all(np.array_equal(states[0][k], states[1][k]) for k in states[0])


# slow: the full 60,000 Fashion-MNIST images; the one check that the benchmark's recipe learns the
# full-size data as published, which no subset can show
@needs_fashion
@pytest.mark.slow
def test_fashion_mnist_784_100_10_adam_reaches_85_percent_in_5_epochs():
    cfg = DataConfig(name="fashion_mnist", val_mode="none")
    split = _split(cfg)
    clf = Classifier(ModelConfig(hidden=[100], activation="relu", init="glorot_uniform"),
                     OptimConfig(name="adam", lr=1e-3), TrainerConfig(epochs=5, batch_size=128),
                     seed=0)
    records = list(train(clf, split))
    assert len(records) == 5 and records[-1].val_accuracy is None
    assert clf.score(split.x_test, split.y_test) >= 0.85


def test_full_train_metrics_score_the_whole_set_after_the_pass():
    split = _split()
    clf = Classifier(ModelConfig(hidden=[16]), OptimConfig(lr=0.5, l2=1.0),
                     TrainerConfig(epochs=2, train_metrics="full"), seed=0)
    record = list(train(clf, split))[-1]
    assert record.train_accuracy == pytest.approx(clf.score(split.x_train, split.y_train))


@pytest.mark.parametrize("order", ["shuffle", "file", "random"])
def test_pass_metrics_score_each_row_by_the_output_its_own_update_saw(order):
    from digitlab.nn.init import ORDERS
    from digitlab.nn.optimizers import sgd_step

    split = _split()
    x, y = split.x_train, split.y_train
    clf = Classifier(ModelConfig(hidden=[16]), OptimConfig(lr=0.5),
                     TrainerConfig(epochs=1, batch_size=10, order=order), seed=3)
    clf.partial_fit(x, y, split.classes)  # the network and the order's generator, set up
    by_hand = Classifier(ModelConfig(hidden=[16]), OptimConfig(lr=0.5),
                         TrainerConfig(epochs=1, batch_size=10, order=order), seed=3)
    by_hand.partial_fit(x, y, split.classes)
    rows = ORDERS[order](len(y), by_hand._order_rng)  # the order of the next pass
    rows = np.arange(len(y)) if rows is None else rows
    clf.partial_fit(x, y)
    cost, correct = 0.0, 0
    for start in range(0, len(y), 10):  # the next pass again, batch by batch, scored as it goes
        batch = rows[start:start + 10]
        targets = by_hand.targets(y[batch])
        output = sgd_step(by_hand.network, x[batch], targets, 0.5)
        cost += float(by_hand.network.cost(output, targets).astype(np.float64).sum())
        correct += int(np.sum(output.argmax(axis=1) == np.searchsorted(split.classes, y[batch])))
    for w, w_by_hand in zip(clf.network.weights, by_hand.network.weights):
        assert np.array_equal(w, w_by_hand)
    assert clf.pass_loss_ == pytest.approx(cost / len(y), rel=1e-12)
    assert clf.pass_accuracy_ == correct / len(y)


def test_early_stopping_on_training_loss_like_scikit_learn():
    split = _split()
    clf = Classifier(ModelConfig(hidden=[16]), OptimConfig(lr=1e-9),  # nothing improves
                     TrainerConfig(epochs=100, early_stopping="train_loss", patience=3), seed=0)
    assert len(list(train(clf, split))) == 5  # stops once more than 3 epochs did not improve


def test_early_stopping_on_validation_needs_a_validation_set():
    split = _split(DataConfig(val_mode="none"))
    clf = Classifier(trainer=TrainerConfig(early_stopping="val_accuracy"))
    with pytest.raises(ConfigError, match="needs a validation set"):
        next(train(clf, split))


def test_divergence_stops_the_run_with_its_epoch():
    split = _split()
    clf = Classifier(ModelConfig(hidden=[64], activation="relu", output="identity",
                                 loss="quadratic", init="normal"),
                     OptimConfig(lr=50.0), TrainerConfig(epochs=20), seed=0)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="at epoch 1"):
        list(train(clf, split))


def test_evaluation_matches_scikit_learn_and_draws_figures():
    split = _split()
    clf = Classifier(ModelConfig(hidden=[32]), OptimConfig(lr=0.5), TrainerConfig(epochs=5))
    records = list(train(clf, split))
    result = evaluate(split.y_test, clf.predict_proba(split.x_test), split.classes)
    assert result.accuracy == pytest.approx(clf.score(split.x_test, split.y_test))
    assert result.confusion.sum() == len(split.y_test)
    assert result.confusion.trace() == round(result.accuracy * len(split.y_test))
    assert json.loads(json.dumps(result.report))["accuracy"] == pytest.approx(result.accuracy)
    assert "precision" in result.report_text and result.log_loss > 0
    fig = confusion_matrix_figure(result, split.classes)
    curves = learning_curves_figure([r.metrics() for r in records])
    assert len(fig.axes) == 1 and len(curves.axes) == 2
    assert len(curves.axes[1].lines) == 2  # train and val accuracy
    for ax in curves.axes:
        assert all(tick == int(tick) for tick in ax.get_xticks())  # whole epochs: 5 of them


# the layers that may import them: the pipelines' glue (Hydra) and the tracking package (MLflow)


def _imports(path, name: str, modules: set[str]) -> set[str]:
    """Every digitlab module `name` imports, wherever the import stands (inside functions and
    TYPE_CHECKING blocks included)."""
    import ast

    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found & modules


def _import_graph() -> dict[str, set[str]]:
    import pkgutil

    import digitlab

    root = Path(digitlab.__file__).parent
    paths = {"digitlab": root / "__init__.py"}
    for info in pkgutil.walk_packages(digitlab.__path__, "digitlab."):
        relative = Path(*info.name.split(".")[1:])
        paths[info.name] = (root / relative / "__init__.py" if info.ispkg
                            else root / relative.with_suffix(".py"))
    return {name: _imports(path, name, set(paths)) for name, path in paths.items()}


def test_the_package_has_no_import_circle():
    """No module reaches itself through its imports, those inside functions included."""
    graph = _import_graph()
    assert graph["digitlab.config"] >= {"digitlab.nn.functions"}  # the walk sees imports
    assert "digitlab.tracking.store" in graph["digitlab.cli.preflight"]  # and inside functions

    def circle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return trail + [start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))
        return None

    circles = [c for c in map(circle_from, graph) if c]
    assert not circles, " → ".join(circles[0])


def test_the_layers_never_import_upward():
    """The network knows no config schema and no tracker; nothing below the command line imports
    it; the cache folder and the atomic writer are one module below everything."""
    graph = _import_graph()
    for name, imported in graph.items():
        if name.startswith("digitlab.nn"):
            assert imported <= {m for m in graph if m.startswith("digitlab.nn")} | {
                "digitlab"}, (name, imported)
        if not name.startswith("digitlab.cli"):
            assert not {m for m in imported if m.startswith("digitlab.cli")}, (name, imported)
        if name.startswith(("digitlab.data", "digitlab.nn", "digitlab.tracking")):
            assert "digitlab.config" not in imported or name.startswith("digitlab.data"), name
    assert graph["digitlab.files"] == set()
