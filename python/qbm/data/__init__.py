"""Data: synthetic distributions over bitstrings, and loaders for local files."""

from qbm.data.synthetic import bars_and_stripes, cardinality, ghz, random_sparse, states_to_index

__all__ = ["bars_and_stripes", "cardinality", "ghz", "random_sparse", "states_to_index"]
