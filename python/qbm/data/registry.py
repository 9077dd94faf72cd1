"""The data registry: each loader module registers the data sets it reads, so that
:func:`load_dataset` and :func:`check_dataset` never import a loader (the loaders import
:class:`qbm.data.images.ImageData`; ``qbm.data`` imports every loader, which fills this)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DataSet:
    name: str
    num_classes: int
    load: Callable[[str | None], Any]
    check: Callable[[str], None] | None = None  # None: built in, no files


_REGISTRY: dict[str, DataSet] = {}


def register(ds: DataSet) -> None:
    _REGISTRY[ds.name] = ds


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def num_classes(name: str) -> int | None:
    ds = _REGISTRY.get(name)
    return ds.num_classes if ds else None


def check_dataset(name: str, data_dir: str | None = None) -> None:
    """Check, without loading anything, that :func:`load_dataset` can find ``name``:
    a known name, and for data sets read from disk a ``data_dir`` holding its files.
    Commands call it before they make directories or start runs."""
    ds = _REGISTRY.get(name)
    if ds is None:
        raise ValueError(f"--dataset: unknown data set {name!r}; choose {', '.join(names())}")
    if ds.check is None:
        return
    if not data_dir:
        from qbm.data.download import DIGESTS  # the data sets qbm can fetch

        hint = " or --download (qbm data get)" if name in DIGESTS else " (qbm never downloads it)"
        raise ValueError(f"--data-dir: {name} is read from local files; give --data-dir{hint}")
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"--data-dir: data directory {data_dir!r} does not exist")
    ds.check(data_dir)


def load_dataset(name: str, data_dir: str | None = None) -> Any:
    """The registered data set ``name`` as an :class:`~qbm.data.images.ImageData`."""
    check_dataset(name, data_dir)
    return _REGISTRY[name].load(data_dir)
