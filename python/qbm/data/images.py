"""Image data sets: scikit-learn's digits (embedded default), MNIST / Fashion-MNIST from
local IDX files.

Every loader returns an :class:`ImageData` with float32 images in [0, 1] of shape
(N, C, H, W) and int64 labels, already split into train and test.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass

import numpy as np


@dataclass
class ImageData:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()) + 1)

    def without_classes(self, classes: list[int]) -> tuple[ImageData, np.ndarray]:
        """Training data without ``classes`` and the held-out test images of them."""
        keep_tr = ~np.isin(self.y_train, classes)
        keep_te = ~np.isin(self.y_test, classes)
        held = self.x_test[~keep_te]
        return ImageData(
            self.name, self.x_train[keep_tr], self.y_train[keep_tr], self.x_test[keep_te], self.y_test[keep_te]
        ), held


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> ImageData:
    """scikit-learn's 8x8 digits (1797 images, shipped with scikit-learn), scaled to [0, 1]
    and split with a fixed permutation."""
    from sklearn.datasets import load_digits as _ld

    d = _ld()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    te, tr = perm[:n_test], perm[n_test:]
    return ImageData("digits", x[tr], y[tr], x[te], y[te])


# ---------------------------------------------------------------- IDX
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}


def _open(path: str) -> bytes:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"path: cannot read IDX file {path!r} ({e})") from None


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (gzipped or not); a ValueError names the file when it is
    malformed or truncated."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: IDX file {path!r} does not exist")
    raw = _open(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ValueError(f"path: {path!r} is not an IDX file (bad magic number)")
    ndim = raw[3]
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise ValueError(f"path: {path!r} has a truncated IDX header")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    dt = np.dtype(_DTYPES[raw[2]])
    need = int(np.prod(dims)) * dt.itemsize
    body = raw[4 + 4 * ndim :]
    if len(body) != need:
        raise ValueError(f"path: {path!r} is truncated or padded: header says {need} bytes of data, found {len(body)}")
    return np.frombuffer(body, dtype=dt).reshape(dims)


def write_idx(path: str, array: np.ndarray) -> None:
    """Write a uint8 / int8 array as IDX (gzipped if the name ends in .gz)."""
    a = np.ascontiguousarray(array)
    if a.dtype not in _CODES:
        raise ValueError(f"array: IDX writing supports uint8 and int8, got {a.dtype}")
    head = bytes([0, 0, _CODES[a.dtype], a.ndim]) + struct.pack(">" + "I" * a.ndim, *a.shape)
    data = head + a.tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(data)


_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find(directory: str, stem: str) -> str:
    for cand in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(directory, cand)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(
        f"path: {stem}[.gz] not found in {directory!r}; download MNIST / Fashion-MNIST IDX files there "
        "(qbm does not download data)"
    )


def load_mnist(directory: str, name: str = "mnist", max_train: int | None = None) -> ImageData:
    """MNIST or Fashion-MNIST from the four standard IDX files in ``directory``."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"path: data directory {directory!r} does not exist")
    arr = {k: read_idx(_find(directory, v)) for k, v in _MNIST_FILES.items()}
    for split in ("train", "test"):
        xi, yi = arr[f"{split}_images"], arr[f"{split}_labels"]
        if xi.ndim != 3 or yi.ndim != 1 or len(xi) != len(yi):
            raise ValueError(f"path: {split} images {xi.shape} and labels {yi.shape} do not match")
    xtr = (arr["train_images"].astype(np.float32) / 255.0)[:, None]
    xte = (arr["test_images"].astype(np.float32) / 255.0)[:, None]
    ytr, yte = arr["train_labels"].astype(np.int64), arr["test_labels"].astype(np.int64)
    if max_train:
        xtr, ytr = xtr[:max_train], ytr[:max_train]
    return ImageData(name, xtr, ytr, xte, yte)


def load_dataset(name: str, data_dir: str | None = None) -> ImageData:
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion-mnist"):
        if not data_dir:
            raise ValueError(f"data_dir: {name} needs --data-dir pointing at its IDX files")
        return load_mnist(data_dir, name)
    if name == "sat4":
        if not data_dir:
            raise ValueError("data_dir: sat4 needs --data-dir pointing at sat-4-full.mat or its CSV files")
        from qbm.data.sat4 import load_sat4

        return load_sat4(data_dir)
    raise ValueError(f"dataset: unknown data set {name!r}; choose digits, mnist, fashion-mnist or sat4")
