"""Image data sets: scikit-learn's digits (embedded default), MNIST / Fashion-MNIST from
local IDX files.

Every loader returns an :class:`ImageData` of shape (N, C, H, W) with int64 labels,
already split into train and test: float32 pixels in [0, 1] for the small sets, uint8
(memory-mapped from qbm's cache) for SAT-4, converted to float per batch.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from qbm.data.registry import DataSet, num_classes, register


@dataclass
class ImageData:
    """Images (N, C, H, W) and int64 labels, split into train and test. Pixels are float
    in [0, 1], or uint8 meaning value / 255 (large sets stay uint8, often memory-mapped,
    and are converted per batch: :func:`to_float01`, :meth:`rows`). Checked when built:
    a ValueError names the data set (or ``source``) and the field."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        where = self.source or self.name
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 4:
                raise ValueError(f"{where}: x_{split} must be (N, C, H, W) images, got shape {x.shape}")
            if len(x) == 0:
                raise ValueError(f"{where}: x_{split} holds no images")
            if y.ndim != 1 or len(y) != len(x):
                raise ValueError(f"{where}: y_{split} has shape {y.shape} for {len(x)} images")
            if x.dtype == np.uint8:  # value / 255: in range by construction
                pass
            elif x.dtype.kind != "f":
                raise ValueError(f"{where}: x_{split} must be float in [0, 1] or uint8, got dtype {x.dtype}")
            elif not np.all(np.isfinite(x)):
                raise ValueError(f"{where}: x_{split} contains NaN or infinite pixels")
            else:
                lo, hi = float(x.min()), float(x.max())
                if lo < 0.0 or hi > 1.0:
                    raise ValueError(f"{where}: x_{split} pixels must lie in [0, 1], found [{lo:.3g}, {hi:.3g}]")
            if y.dtype.kind not in "iu":
                raise ValueError(f"{where}: y_{split} labels must be integers, got dtype {y.dtype}")
            k = num_classes(self.name)  # labels of a registered data set lie in 0..K-1
            if y.min() < 0 or (k is not None and y.max() >= k):
                raise ValueError(
                    f"{where}: y_{split} labels out of range [{int(y.min())}, {int(y.max())}]"
                    + (f"; {self.name} has classes 0..{k - 1}" if k is not None else "")
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"{where}: train images {self.x_train.shape[1:]} and test images "
                f"{self.x_test.shape[1:]} differ in shape"
            )

    def rows(self, split: str, index: Any = None) -> np.ndarray:
        """float32 pixels in [0, 1] of ``split`` ("train" or "test") rows ``index`` (all
        when None), converted from uint8 here, so only these rows are ever float."""
        if split not in ("train", "test"):
            raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
        x = getattr(self, f"x_{split}")
        return to_float01(x if index is None else x[index])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()) + 1)

    def without_classes(self, classes: list[int]) -> tuple[ImageData, np.ndarray]:
        """Training data without ``classes`` and the held-out test images of them; a
        ValueError naming ``holdout`` for classes the data does not have or fewer than two
        classes left."""
        present = set(int(c) for c in np.unique(self.y_train))
        unknown = sorted(set(int(c) for c in classes) - present)
        if unknown:
            raise ValueError(f"holdout: classes {unknown} are not in {self.name} (classes {sorted(present)})")
        if len(present - set(int(c) for c in classes)) < 2:
            raise ValueError("holdout: at least two classes must remain for training")
        keep_tr = ~np.isin(self.y_train, classes)
        keep_te = ~np.isin(self.y_test, classes)
        held = to_float01(self.x_test[~keep_te])
        if not keep_tr.any() or not keep_te.any():
            raise ValueError(f"holdout: holding out {sorted(classes)} leaves no training or test images")
        return ImageData(
            self.name, self.x_train[keep_tr], self.y_train[keep_tr], self.x_test[keep_te], self.y_test[keep_te]
        ), held


def to_float01(x: Any) -> np.ndarray:
    """float32 pixels in [0, 1]: uint8 / 255, floats as float32 (no copy when already)."""
    a = np.asarray(x)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    return a.astype(np.float32, copy=False)


def iter_float_chunks(x: Any, chunk: int = 4096):
    """float32 [0, 1] chunks of ``x`` along its first axis (bounded memory for big sets)."""
    for s in range(0, len(x), chunk):
        yield to_float01(x[s : s + chunk])


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> ImageData:
    """scikit-learn's 8x8 digits (1797 images, shipped with scikit-learn), scaled to [0, 1]
    and split with a fixed permutation. The file is read as ``sklearn.datasets.load_digits``
    reads it, without importing scikit-learn (1.2 s of imports)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("dataset: 'digits' ships with scikit-learn, which is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    d = np.loadtxt(path, delimiter=",")
    if d.ndim != 2 or d.shape[1] != 65:
        raise ValueError(f"dataset: {path!r} is not the digits table (shape {d.shape}, expected (N, 65))")
    x = (d[:, :-1].reshape(-1, 8, 8) / 16.0).astype(np.float32)[:, None, :, :]
    y = d[:, -1].astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    te, tr = perm[:n_test], perm[n_test:]
    return ImageData("digits", x[tr], y[tr], x[te], y[te])


# ---------------------------------------------------------------- IDX
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}


# Largest IDX payload read (the full MNIST training images are 47 MB): the declared size
# is checked against it before anything is decompressed, so a gzip bomb is refused early.
MAX_IDX_BYTES = 2 << 30


def read_idx(path: str, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (gzipped or not); a ValueError names the file when it is
    malformed, truncated, padded, or declares more than ``max_bytes`` of data. The
    header is read first and the body is decompressed only up to its declared size."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: IDX file {path!r} does not exist")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
                raise ValueError(f"path: {path!r} is not an IDX file (bad magic number)")
            ndim = head[3]
            dims_raw = fh.read(4 * ndim)
            if ndim < 1 or len(dims_raw) < 4 * ndim:
                raise ValueError(f"path: {path!r} has a truncated IDX header")
            dims = struct.unpack(">" + "I" * ndim, dims_raw)
            dt = np.dtype(_DTYPES[head[2]])
            need = int(np.prod(np.array(dims, dtype=object))) * dt.itemsize
            if need > max_bytes:
                raise ValueError(
                    f"path: {path!r} declares {need} bytes of data (dims {dims}), above the limit of {max_bytes}"
                )
            body = fh.read(need + 1)  # one byte more reveals padding
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"path: cannot read IDX file {path!r} ({e})") from None
    if len(body) != need:
        raise ValueError(
            f"path: {path!r} is truncated or padded: header says {need} bytes of data, found "
            f"{len(body) if len(body) <= need else 'more'}"
        )
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
        "(or fetch them: qbm data get mnist|fashion-mnist)"
    )


def load_mnist(directory: str, name: str = "mnist", max_train: int | None = None) -> ImageData:
    """MNIST or Fashion-MNIST from the four standard IDX files in ``directory``."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"path: data directory {directory!r} does not exist")
    arr = {k: read_idx(_find(directory, v)) for k, v in _MNIST_FILES.items()}
    for split in ("train", "test"):
        xi, yi = arr[f"{split}_images"], arr[f"{split}_labels"]
        if xi.ndim != 3 or yi.ndim != 1 or len(xi) != len(yi):
            raise ValueError(
                f"path: {directory!r}: {split} images {xi.shape} and labels {yi.shape} do not match "
                "(expected (N, H, W) and (N,))"
            )
    xtr = (arr["train_images"].astype(np.float32) / 255.0)[:, None]
    xte = (arr["test_images"].astype(np.float32) / 255.0)[:, None]
    ytr, yte = arr["train_labels"].astype(np.int64), arr["test_labels"].astype(np.int64)
    if max_train:
        xtr, ytr = xtr[:max_train], ytr[:max_train]
    return ImageData(name, xtr, ytr, xte, yte, source=f"{name} in {directory!r}")


def _check_mnist(data_dir: str) -> None:
    for v in _MNIST_FILES.values():
        _find(data_dir, v)


register(DataSet("digits", 10, lambda _dir: load_digits()))
register(DataSet("mnist", 10, lambda d: load_mnist(d, "mnist"), _check_mnist))
register(DataSet("fashion-mnist", 10, lambda d: load_mnist(d, "fashion-mnist"), _check_mnist))
