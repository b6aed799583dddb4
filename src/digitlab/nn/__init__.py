"""The network: functions (activations, losses), network (BP1–BP4), optimizers, classifier."""

from digitlab.nn.classifier import Classifier
from digitlab.nn.network import Network

__all__ = ["Classifier", "Network"]
