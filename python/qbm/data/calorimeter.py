"""Calorimeter showers ("electron showers at fixed angle": HDF5 files holding energy
deposits on a 25 x 25 x 25 grid), from a local path.

Each shower is summed over its longitudinal (last) axis, rebinned to a small
``rows x cols`` grid (as even as 25 allows), and binarised: a pixel is 1 if its deposit
exceeds 1/10 of the mean pixel deposit of the data set at that resolution (Rudolph et al.
2024). The empirical distribution over the 2^(rows*cols) patterns is the QCBM target.
Needs h5py (``pip install "quantum-boltzmann-ml[hep]"``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

GRID_FOR_N = {4: (2, 2), 6: (2, 3), 9: (3, 3), 12: (3, 4), 16: (4, 4), 20: (4, 5)}


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError('reading calorimeter files needs h5py: pip install "quantum-boltzmann-ml[hep]"') from None
    return h5py


def load_showers(path: str, key: str | None = None, max_showers: int | None = None) -> np.ndarray:
    """Energy grids (N, 25, 25, 25) (or (N, H, W)) as float64 from an HDF5 file.
    ``key`` names the dataset; by default the first dataset with 3 or 4 dimensions."""
    h5py = _h5py()
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: calorimeter file {path!r} does not exist")
    try:
        fh = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"path: {path!r} is not a readable HDF5 file ({e})") from None
    with fh:
        if key is None:
            found: list[str] = []
            fh.visititems(
                lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) and obj.ndim in (3, 4) else None
            )
            if not found:
                raise ValueError(f"path: no (N, 25, 25, 25) or (N, H, W) dataset in {path!r}")
            key = found[0]
        if key not in fh:
            raise ValueError(f"key: dataset {key!r} not found in {path!r}")
        ds = fh[key]
        data = np.asarray(ds[:max_showers] if max_showers else ds[...], dtype=np.float64)
    if data.ndim not in (3, 4) or data.shape[0] == 0:
        raise ValueError(f"key: dataset {key!r} has shape {data.shape}; expected (N, 25, 25, 25) or (N, H, W)")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"key: dataset {key!r} contains NaN or inf")
    return data


def downsize(showers: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Sum over depth (if 4-D) and rebin to (N, rows, cols) by summing near-equal blocks."""
    img = showers.sum(axis=-1) if showers.ndim == 4 else showers
    r_edges = np.array_split(np.arange(img.shape[1]), rows)
    c_edges = np.array_split(np.arange(img.shape[2]), cols)
    out = np.empty((img.shape[0], rows, cols))
    for i, rr in enumerate(r_edges):
        for j, cc in enumerate(c_edges):
            out[:, i, j] = img[:, rr[0] : rr[-1] + 1, cc[0] : cc[-1] + 1].sum(axis=(1, 2))
    return out


def binarise(images: np.ndarray) -> np.ndarray:
    """1 where a pixel exceeds 1/10 of the mean pixel deposit of the data set."""
    thr = images.mean() / 10.0
    return (images > thr).reshape(images.shape[0], -1).astype(np.uint8)


def pattern_distribution(showers: np.ndarray, n: int) -> np.ndarray:
    """Empirical distribution over the 2^n binarised patterns of energy grids (N, 25, 25, 25)
    or depth sums (N, H, W) at the resolution of n (n in 4, 6, 9, 12, 16, 20)."""
    from qbm.data.synthetic import states_to_index

    if n not in GRID_FOR_N:
        raise ValueError(f"n: calorimeter grids exist for n in {sorted(GRID_FOR_N)}, got {n}")
    idx = states_to_index(binarise(downsize(showers, *GRID_FOR_N[n])))
    return np.bincount(idx, minlength=2**n) / len(idx)


def shower_distribution(path: str, n: int, key: str | None = None) -> np.ndarray:
    """Empirical distribution over 2^n binarised patterns of the showers in an HDF5 file."""
    if n not in GRID_FOR_N:  # checked before the file is read
        raise ValueError(f"n: calorimeter grids exist for n in {sorted(GRID_FOR_N)}, got {n}")
    return pattern_distribution(load_showers(path, key), n)
