"""Data: synthetic distributions over bitstrings, and loaders for local files."""

from qbm.data.images import (
    ImageData,
    check_dataset,
    iter_float_chunks,
    load_dataset,
    load_digits,
    load_mnist,
    read_idx,
    to_float01,
    write_idx,
)
from qbm.data.synthetic import bars_and_stripes, cardinality, ghz, random_sparse, states_to_index

__all__ = [
    "iter_float_chunks",
    "to_float01",
    "ImageData",
    "check_dataset",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "read_idx",
    "write_idx",
    "bars_and_stripes",
    "cardinality",
    "ghz",
    "random_sparse",
    "states_to_index",
]
