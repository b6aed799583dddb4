"""digitlab: a from-scratch NumPy backprop network for handwritten digits, as a research pipeline."""

__version__ = "0.1.0"
