"""The reference of benchmarks/bench_commands.py: the script a researcher writes by hand with
Hydra and MLflow, in the shape of their tutorials. scikit-learn splits the digits, a
64-hidden-10 sigmoid/softmax NumPy network trains by mini-batch SGD, and MLflow's documented API
logs the config, per-epoch metrics, a classification report, a confusion-matrix figure, the
weights and a pyfunc model. Imports inside main, nothing cached.

    python benchmarks/typical.py uri=sqlite:///mlruns/mlflow.db epochs=1 seed=0
    python benchmarks/typical.py -m hidden=16,32,64 lr=0.1,0.5 seed=0,1 epochs=20
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path=".", config_name="typical")
def main(cfg: DictConfig) -> None:
    import tempfile
    from pathlib import Path

    import matplotlib.pyplot as plt
    import mlflow
    import numpy as np
    from omegaconf import OmegaConf
    from sklearn.datasets import load_digits
    from sklearn.metrics import ConfusionMatrixDisplay, classification_report
    from sklearn.model_selection import train_test_split

    def forward(x, w1, b1, w2, b2):
        a1 = 1 / (1 + np.exp(-(x @ w1 + b1)))
        z = a1 @ w2 + b2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return a1, e / e.sum(axis=1, keepdims=True)

    class Model(mlflow.pyfunc.PythonModel):
        def __init__(self, weights):
            self.weights = weights

        def predict(self, context, model_input, params=None):
            return forward(np.asarray(model_input, dtype=float) / 16, *self.weights)[1].argmax(1)

    x, y = load_digits(return_X_y=True)
    x_rest, x_test, y_rest, y_test = train_test_split(x / 16, y, test_size=0.2, stratify=y,
                                                      random_state=0)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.1,
                                                      stratify=y_rest, random_state=0)
    rng = np.random.default_rng(cfg.seed)
    w1, b1 = rng.normal(0, 1 / 8, (64, cfg.hidden)), np.zeros(cfg.hidden)
    w2, b2 = rng.normal(0, cfg.hidden ** -0.5, (cfg.hidden, 10)), np.zeros(10)
    targets = np.eye(10)[y_train]

    def scores(xs, ys):
        proba = forward(xs, w1, b1, w2, b2)[1]
        return float(-np.log(proba[np.arange(len(ys)), ys]).mean()), float(
            (proba.argmax(1) == ys).mean())

    mlflow.set_tracking_uri(cfg.uri)
    if mlflow.get_experiment_by_name(cfg.experiment) is None:
        store = Path(cfg.uri.removeprefix("sqlite:///")).resolve().parent
        mlflow.create_experiment(cfg.experiment, artifact_location=(store / "artifacts").as_uri())
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run():
        mlflow.log_params(OmegaConf.to_container(cfg))
        for epoch in range(1, cfg.epochs + 1):
            order = rng.permutation(len(x_train))
            for start in range(0, len(order), cfg.batch):
                rows = order[start:start + cfg.batch]
                a1, a2 = forward(x_train[rows], w1, b1, w2, b2)
                d2 = (a2 - targets[rows]) / len(rows)
                d1 = (d2 @ w2.T) * a1 * (1 - a1)
                w2 -= cfg.lr * a1.T @ d2
                b2 -= cfg.lr * d2.sum(0)
                w1 -= cfg.lr * x_train[rows].T @ d1
                b1 -= cfg.lr * d1.sum(0)
            (train_loss, train_acc), (val_loss, val_acc) = scores(x_train, y_train), scores(
                x_val, y_val)
            mlflow.log_metrics({"train_loss": train_loss, "train_accuracy": train_acc,
                                "val_loss": val_loss, "val_accuracy": val_acc}, step=epoch)
        predicted = forward(x_test, w1, b1, w2, b2)[1].argmax(1)
        mlflow.log_text(classification_report(y_test, predicted), "classification_report.txt")
        display = ConfusionMatrixDisplay.from_predictions(y_test, predicted)
        mlflow.log_figure(display.figure_, "confusion_matrix.png")
        plt.close(display.figure_)
        with tempfile.TemporaryDirectory() as folder:
            np.savez(Path(folder) / "weights.npz", W1=w1, b1=b1, W2=w2, b2=b2)
            mlflow.log_artifact(str(Path(folder) / "weights.npz"))
        mlflow.pyfunc.log_model(name="model", python_model=Model([w1, b1, w2, b2]),
                                pip_requirements=[f"numpy=={np.__version__}"])


if __name__ == "__main__":
    main()
