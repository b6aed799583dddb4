"""The network: functions (activations, losses), init, network (BP1–BP4, the reference path),
fused and per_sample (the fast paths), optimizers, orders, classifier."""

from importlib import import_module

# looked up on first use, so digitlab.config can read the registries' names from the modules
# below without importing the classifier, which imports digitlab.config
_EXPORTS = {"Classifier": "digitlab.nn.classifier", "Network": "digitlab.nn.network"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'digitlab.nn' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
