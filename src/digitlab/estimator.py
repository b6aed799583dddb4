"""The network as a scikit-learn estimator: every hyperparameter an __init__ argument, so it works
in Pipeline, cross_val_score and GridSearchCV."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from digitlab.config import ModelConfig, OptimConfig, TrainerConfig
from digitlab.nn.classifier import Classifier

# the outputs whose values lie in [0, 1], so normalised they are class probabilities
PROBABILITY_OUTPUTS = ("sigmoid", "softmax")


def _gives_probabilities(estimator: DigitClassifier) -> bool:
    if estimator.output not in PROBABILITY_OUTPUTS:
        raise AttributeError(f"predict_proba is not available with output={estimator.output!r}: "
                             f"its outputs are not probabilities (use output="
                             f"{' or '.join(PROBABILITY_OUTPUTS)}, or predict)")
    return True


DEFAULT_HIDDEN = tuple(ModelConfig().hidden)


class DigitClassifier(ClassifierMixin, BaseEstimator):
    """A fully connected backprop network (digitlab.nn) with scikit-learn's estimator API.

    Parameters mirror the config keys: hidden, activation, output, loss, init, lr, momentum,
    nesterov, l2, l2_style, optimizer, epochs, batch_size, order, dtype, random_state."""

    # the defaults are the schemas' (digitlab.config), written once there
    def __init__(self, hidden=DEFAULT_HIDDEN, activation=ModelConfig.activation,
                 output=ModelConfig.output, loss=ModelConfig.loss, init=ModelConfig.init,
                 optimizer=OptimConfig.name, lr=OptimConfig.lr, momentum=OptimConfig.momentum,
                 nesterov=OptimConfig.nesterov, l2=OptimConfig.l2, l2_style=OptimConfig.l2_style,
                 epochs=TrainerConfig.epochs, batch_size=TrainerConfig.batch_size,
                 order=TrainerConfig.order, dtype=TrainerConfig.dtype, random_state=0):
        self.hidden = hidden
        self.activation = activation
        self.output = output
        self.loss = loss
        self.init = init
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.l2 = l2
        self.l2_style = l2_style
        self.epochs = epochs
        self.batch_size = batch_size
        self.order = order
        self.dtype = dtype
        self.random_state = random_state

    def _classifier(self) -> Classifier:
        hidden = [self.hidden] if np.isscalar(self.hidden) else list(self.hidden)
        model = ModelConfig(hidden=hidden, activation=self.activation, output=self.output,
                            loss=self.loss, init=self.init)
        optim = OptimConfig(name=self.optimizer, lr=self.lr, momentum=self.momentum,
                            nesterov=self.nesterov, l2=self.l2, l2_style=self.l2_style)
        trainer = TrainerConfig(epochs=self.epochs, batch_size=self.batch_size,
                                order=self.order, dtype=self.dtype)
        seed = 0 if self.random_state is None else int(self.random_state)
        return Classifier(model, optim, trainer, seed=seed)

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.model_ = self._classifier().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def partial_fit(self, X, y, classes=None):
        first = not hasattr(self, "model_")
        X, y = validate_data(self, X, y, reset=first)
        if first:
            check_classification_targets(y)
            self.classes_ = np.unique(y) if classes is None else np.asarray(classes)
            self.model_ = self._classifier()
        self.model_.partial_fit(X, y, classes=self.classes_)
        return self

    def _outputs(self, X):
        """The output layer's activations, one column per class (any output unit)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.model_.predict_proba(X).astype(np.float64)

    @available_if(_gives_probabilities)
    def predict_proba(self, X):
        proba = self._outputs(X)
        return proba / proba.sum(axis=1, keepdims=True)  # sigmoid outputs need not sum to 1

    def predict(self, X):
        check_is_fitted(self)
        return self.classes_[np.argmax(self._outputs(X), axis=1)]
