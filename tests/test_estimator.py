"""The scikit-learn estimator: scikit-learn's own estimator checks, and the network inside a
Pipeline, cross_val_score and GridSearchCV on the digits."""

from __future__ import annotations

import pickle

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from digitlab.estimator import DigitClassifier


# every check applies but check_array_api_input, which scikit-learn itself skips unless
# SCIPY_ARRAY_API is set (the network is NumPy-only)
@parametrize_with_checks([DigitClassifier(epochs=5, hidden=(16,))])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_cross_validation_and_grid_search_on_the_digits():
    x, y = load_digits(return_X_y=True)
    pipe = make_pipeline(MinMaxScaler(), DigitClassifier(hidden=32, lr=0.5, epochs=15))
    scores = cross_val_score(pipe, x, y, cv=3)
    assert scores.mean() > 0.9
    grid = GridSearchCV(pipe, {"digitclassifier__hidden": [8, 32],
                               "digitclassifier__lr": [0.01, 0.5]}, cv=2).fit(x, y)
    assert grid.best_params_["digitclassifier__lr"] == 0.5
    restored = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(restored.predict(x[:50]), grid.predict(x[:50]))


def test_predict_proba_only_where_the_outputs_are_probabilities():
    import pytest

    x, y = load_digits(return_X_y=True)
    x = x / 16
    for output in ("tanh", "identity"):
        clf = DigitClassifier(hidden=16, output=output, loss="quadratic", epochs=3).fit(x, y)
        assert not hasattr(clf, "predict_proba")
        with pytest.raises(AttributeError, match="predict_proba") as refused:
            clf.predict_proba(x[:5])
        assert f"output='{output}'" in str(refused.value.__cause__ or refused.value)
        assert set(clf.predict(x[:50])) <= set(range(10))
    proba = DigitClassifier(hidden=16, epochs=3).fit(x, y).predict_proba(x[:20])
    assert proba.min() >= 0 and np.allclose(proba.sum(axis=1), 1)
