"""The Fashion-MNIST benchmark's recipe (Xiao et al. 2017, benchmark/runner.py: scikit-learn's
MLPClassifier at its defaults on standardised pixels) run by scikit-learn itself on MNIST, to
tell whether a reproduced mnist-* row that misses its published value is digitlab's or the
recipe's: both print the final test accuracy per seed.

    python benchmarks/sklearn_mnist_mlp.py /path/to/mnist 10,10 tanh --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from digitlab.config import DataConfig
from digitlab.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mnist_root")
    parser.add_argument("hidden", help="widths, e.g. 100 or 10,10")
    parser.add_argument("activation", choices=("relu", "tanh"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    mnist = load_dataset(DataConfig(name="mnist", root=args.mnist_root))
    scaler = StandardScaler().fit(mnist.x_train.astype(np.float64))
    x_train, x_test = scaler.transform(mnist.x_train), scaler.transform(mnist.x_test)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    scores = []
    for seed in args.seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = MLPClassifier(hidden_layer_sizes=hidden, activation=args.activation,
                                random_state=seed).fit(x_train, mnist.y_train)
        scores.append(clf.score(x_test, mnist.y_test))
        print(f"seed {seed}: {clf.n_iter_} epochs, test accuracy {scores[-1]:.4f}", flush=True)
    print(f"MLPClassifier{hidden} {args.activation}: mean {np.mean(scores):.4f} ± "
          f"{np.std(scores, ddof=1) if len(scores) > 1 else 0:.4f} over {len(scores)} seeds")


if __name__ == "__main__":
    main()
