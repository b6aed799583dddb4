"""Data: load a named dataset (checked), split it with scikit-learn, scale it."""

from digitlab.data.errors import DataError
from digitlab.data.sources import Dataset, load_dataset
from digitlab.data.split import Split, make_split

__all__ = ["DataError", "Dataset", "Split", "load_dataset", "make_split"]
