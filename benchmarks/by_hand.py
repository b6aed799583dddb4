"""The by-hand baseline of benchmarks/bench_commands.py: the Hydra + MLflow script a researcher
writes in an afternoon. Hydra composes the config, scikit-learn splits the digits, NumPy trains a
64-32-10 sigmoid/softmax network by mini-batch SGD, MLflow logs params, per-epoch metrics and the
weights into a SQLite store.

    python benchmarks/by_hand.py tracking_uri=sqlite:///mlruns/mlflow.db epochs=1 seed=0
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import hydra
import mlflow
import numpy as np
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


@dataclass
class Config:
    hidden: int = 32
    lr: float = 0.5
    epochs: int = 1
    batch_size: int = 10
    seed: int = 0
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    experiment: str = "by-hand"


ConfigStore.instance().store(name="config", node=Config)


def sigmoid(z):
    return 0.5 * np.tanh(0.5 * z) + 0.5


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@hydra.main(version_base="1.3", config_path=None, config_name="config")
def main(cfg: Config) -> None:
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16, y, test_size=0.2, stratify=y,
                                                        random_state=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    w1 = rng.normal(0, 1 / 8, (64, cfg.hidden))
    b1 = np.zeros(cfg.hidden)
    w2 = rng.normal(0, 1 / np.sqrt(cfg.hidden), (cfg.hidden, 10))
    b2 = np.zeros(10)
    targets = np.eye(10)[y_train]
    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run():
        mlflow.log_params(OmegaConf.to_container(cfg))
        for epoch in range(cfg.epochs):
            order = rng.permutation(len(x_train))
            for start in range(0, len(order), cfg.batch_size):
                rows = order[start:start + cfg.batch_size]
                a1 = sigmoid(x_train[rows] @ w1 + b1)
                a2 = softmax(a1 @ w2 + b2)
                d2 = (a2 - targets[rows]) / len(rows)
                d1 = (d2 @ w2.T) * a1 * (1 - a1)
                w2 -= cfg.lr * a1.T @ d2
                b2 -= cfg.lr * d2.sum(axis=0)
                w1 -= cfg.lr * x_train[rows].T @ d1
                b1 -= cfg.lr * d1.sum(axis=0)
            proba = softmax(sigmoid(x_test @ w1 + b1) @ w2 + b2)
            mlflow.log_metrics({"test_accuracy": float(np.mean(proba.argmax(axis=1) == y_test)),
                                "test_loss": float(-np.mean(np.log(proba[np.arange(len(y_test)),
                                                                         y_test])))},
                               step=epoch + 1)
        with tempfile.TemporaryDirectory() as folder:
            weights = Path(folder) / "weights.npz"
            np.savez(weights, W1=w1, b1=b1, W2=w2, b2=b2)
            mlflow.log_artifact(str(weights))


if __name__ == "__main__":
    main()
