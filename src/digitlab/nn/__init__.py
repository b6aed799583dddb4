"""The network: functions (activations, losses), init, network (BP1–BP4, the reference path),
fused and per_sample (the fast paths), optimizers, orders, settings (plain values), classifier.
It knows no config schema and no tracker: digitlab.config extends its settings."""

from importlib import import_module

# looked up on first use: reading a registry's names (digitlab.config) does not import the
# classifier and its BLAS controls
_EXPORTS = {"Classifier": "digitlab.nn.classifier", "Network": "digitlab.nn.network"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'digitlab.nn' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
