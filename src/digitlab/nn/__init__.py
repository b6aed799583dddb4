"""The network: functions (activations, losses), init, network (BP1–BP4, the reference path),
fused and per_sample (the fast paths), optimizers, settings (plain values), classifier.
It knows no config schema and no tracker: digitlab.config extends its settings."""
