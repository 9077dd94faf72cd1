"""Data: synthetic distributions over bitstrings, and loaders for local files."""

from qbm.data.images import (
    ImageData,
    iter_float_chunks,
    load_digits,
    load_mnist,
    read_idx,
    to_float01,
    write_idx,
)
from qbm.data import celeba as _celeba  # noqa: F401  (registers "celeba")
from qbm.data import sat4 as _sat4  # noqa: F401  (registers "sat4")
from qbm.data.registry import check_dataset, load_dataset
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
