"""The two fast paths of batch-1 SGD, the compiled per-sample loop (trainer.engine=auto) and the
fused BLAS step (trainer.engine=numpy), against the reference path (trainer.engine=reference:
backprop, then the optimizer's update): the same pass, equal up to float rounding, for every unit,
loss and option they run."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from digitlab.config import ConfigError, ModelConfig, OptimConfig, TrainerConfig
from digitlab.nn.classifier import Classifier

TOLERANCE = {"float64": 1e-9, "float32": 2e-4}


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x[:400] / 16, y[:400]  # about half the pixels are 0: the skipped rows are exercised


def _two_passes(engine: str, digits, model: dict, lr: float = 0.05, l2: float = 0.0,
                dtype: str = "float64", order: str = "shuffle") -> Classifier:
    clf = Classifier(ModelConfig(**model), OptimConfig(lr=lr, l2=l2),
                     TrainerConfig(batch_size=1, order=order, dtype=dtype, engine=engine), seed=3)
    for _ in range(2):
        clf.partial_fit(*digits, classes=np.arange(10))
    return clf


def assert_same_pass(digits, dtype="float64", **options):
    reference = _two_passes("reference", digits, dtype=dtype, **options)
    for fast in ("auto", "numpy"):
        compiled = _two_passes(fast, digits, dtype=dtype, **options)
        for ours, theirs in zip(compiled.network.params, reference.network.params):
            assert ours.dtype == theirs.dtype == np.dtype(dtype)
            np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE[dtype],
                                       atol=TOLERANCE[dtype])
        assert compiled.pass_loss_ == pytest.approx(reference.pass_loss_, rel=TOLERANCE[dtype])
        assert compiled.pass_accuracy_ == reference.pass_accuracy_
    # and training did move the weights: equal because both learned the same, not because idle
    start = Classifier(ModelConfig(**options["model"]), trainer=TrainerConfig(dtype=dtype), seed=3)
    start._setup(64, np.arange(10))
    assert not np.allclose(compiled.network.weights[0], start.network.weights[0], atol=1e-3)

UNITS = [
    dict(activation="sigmoid", output="softmax", loss="cross_entropy"),
    dict(activation="sigmoid", output="sigmoid", loss="quadratic", init="normal",
         derivative_quirk=True),  # the blog network
    dict(activation="sigmoid", output="sigmoid", loss="binary_ce"),
    dict(activation="tanh", output="tanh", loss="quadratic", init="uniform", init_scale=0.2),
    dict(activation="relu", output="softmax", loss="quadratic"),
    dict(activation="identity", output="identity", loss="quadratic", bias=False),
    dict(activation="sigmoid", output="softmax", loss="cross_entropy", hidden=[20, 15]),
    dict(activation="tanh", output="sigmoid", loss="cross_entropy", derivative_quirk=True),
]


@pytest.mark.parametrize("model", UNITS, ids=lambda m: "-".join(map(str, m.values())))
def test_the_compiled_pass_is_the_numpy_pass(digits, model):
    assert_same_pass(digits, model={"hidden": [30], **model}, lr=0.01 if model["activation"]
                     in ("relu", "identity") else 0.05)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("order", ["file", "shuffle", "random"])
def test_dtype_order_and_weight_decay(digits, dtype, order):
    assert_same_pass(digits, dtype=dtype, model={"hidden": [30]}, order=order)
    assert_same_pass(digits, dtype=dtype, model={"hidden": [30]}, order=order, l2=5.0)


def test_a_unit_without_a_compiled_code_takes_the_batched_path(digits, monkeypatch):
    """A new registry entry trains before the kernel learns it: one_pass declines, NumPy runs."""
    from digitlab.nn import per_sample

    monkeypatch.delitem(per_sample.UNITS, "tanh")
    model = {"hidden": [30], "activation": "tanh", "output": "softmax"}
    declined = _two_passes("auto", digits, model)
    reference = _two_passes("reference", digits, model)
    for a, b in zip(declined.network.params, reference.network.params):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_every_registry_unit_and_loss_has_a_compiled_code():
    from digitlab.config import ACTIVATIONS, LOSSES, OUTPUTS
    from digitlab.nn import per_sample

    assert set(ACTIVATIONS) | set(OUTPUTS) <= per_sample.UNITS.keys()
    assert set(LOSSES) <= per_sample.LOSS_CODES.keys()


def test_a_view_of_the_data_is_read_as_it_is(digits):
    """Fortran-ordered or strided input takes the same pass as a contiguous copy."""
    x, y = digits
    contiguous = _two_passes("auto", (x, y), {"hidden": [30]})
    strided = _two_passes("auto", (np.asfortranarray(x), y), {"hidden": [30]})
    for a, b in zip(contiguous.network.params, strided.network.params):
        np.testing.assert_array_equal(a, b)


def test_engine_is_validated():
    with pytest.raises(ConfigError, match="trainer.engine"):
        TrainerConfig(engine="numba")


def test_a_config_logged_before_the_engine_existed_reruns_on_numpy():
    """rerun.py rebuilds logged configs: one without trainer.engine was trained by NumPy calls."""
    from dataclasses import asdict

    from digitlab.config import RunConfig, run_config_from_dict

    logged = asdict(RunConfig())
    assert run_config_from_dict(logged).trainer.engine == "auto"  # logged now: kept
    del logged["trainer"]["engine"]
    assert run_config_from_dict(logged).trainer.engine == "numpy"
