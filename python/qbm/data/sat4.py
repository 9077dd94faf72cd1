"""SAT-4 (DeepSat): 28 x 28 x 4 (R, G, B, NIR) patches, 4 classes (barren land, trees,
grassland, other), from a local directory holding either the public ``sat-4-full.mat``
(keys train_x (28, 28, 4, N), train_y (4, N), test_x, test_y) or its CSV files
(``X_train_sat4.csv`` with 3136 values per row in (28, 28, 4) order, ``y_train_sat4.csv``
one-hot with 4 columns, and the ``test`` pair)."""

from __future__ import annotations

import os

import numpy as np

from qbm.data.images import ImageData

CLASSES = ("barren land", "trees", "grassland", "other")


def _from_mat(path: str, max_per_split: int | None) -> ImageData:
    import scipy.io

    try:
        m = scipy.io.loadmat(path)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"path: {path!r} is not a readable .mat file ({e})") from None
    for k in ("train_x", "train_y", "test_x", "test_y"):
        if k not in m:
            raise ValueError(f"path: {path!r} lacks the variable {k!r} (expected SAT-4 layout)")

    def split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if x.ndim != 4 or x.shape[:3] != (28, 28, 4) or y.shape[0] != 4 or y.shape[1] != x.shape[3]:
            raise ValueError(f"path: SAT-4 arrays have shapes {x.shape} and {y.shape}; expected (28, 28, 4, N), (4, N)")
        n = x.shape[3] if max_per_split is None else min(max_per_split, x.shape[3])
        if n == 0:
            raise ValueError(f"path: {path!r} holds no images")
        if not np.all(np.isfinite(x[..., :n])):
            raise ValueError(f"path: {path!r}: pixels contain NaN or inf")
        imgs = np.transpose(x[..., :n], (3, 2, 0, 1)).astype(np.float32) / 255.0
        return imgs, _labels_from_one_hot(y[:, :n].T, path)

    xtr, ytr = split(m["train_x"], m["train_y"])
    xte, yte = split(m["test_x"], m["test_y"])
    return ImageData("sat4", xtr, ytr, xte, yte, source=f"sat4 file {path!r}")


def _labels_from_one_hot(y: np.ndarray, path: str) -> np.ndarray:
    """(N, 4) one-hot rows -> labels; NaN, non-0/1 values or rows without exactly one 1
    are errors naming the file."""
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"path: {path!r}: labels contain NaN or inf")
    if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
        raise ValueError(f"path: {path!r}: labels must be one-hot rows of 4 values (exactly one 1 per row)")
    return np.argmax(y, axis=1).astype(np.int64)


def _read_csv(path: str, cols: int, max_rows: int | None) -> np.ndarray:
    try:
        a = np.loadtxt(path, delimiter=",", max_rows=max_rows, ndmin=2)
    except ValueError as e:
        raise ValueError(f"path: {path!r} is malformed ({e})") from None
    if a.shape[0] == 0:
        raise ValueError(f"path: {path!r} has no rows")
    if a.shape[1] != cols:
        raise ValueError(f"path: {path!r} has {a.shape[1]} columns per row, expected {cols}")
    return a


def load_sat4(directory: str, max_per_split: int | None = None) -> ImageData:
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"path: SAT-4 directory {directory!r} does not exist")
    mat = os.path.join(directory, "sat-4-full.mat")
    if os.path.exists(mat):
        return _from_mat(mat, max_per_split)
    names = {k: os.path.join(directory, f"{k}_sat4.csv") for k in ("X_train", "y_train", "X_test", "y_test")}
    missing = [p for p in names.values() if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(
            f"path: SAT-4 files not found in {directory!r}: need sat-4-full.mat or "
            f"X_train_sat4.csv, y_train_sat4.csv, X_test_sat4.csv, y_test_sat4.csv (missing "
            f"{', '.join(os.path.basename(p) for p in missing)})"
        )
    out = []
    for split in ("train", "test"):
        x = _read_csv(names[f"X_{split}"], 28 * 28 * 4, max_per_split)
        y = _read_csv(names[f"y_{split}"], 4, max_per_split)
        if len(x) != len(y):
            raise ValueError(f"path: {split} images ({len(x)}) and labels ({len(y)}) differ in count")
        if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 255:
            raise ValueError(f"path: {names[f'X_{split}']!r}: pixels must be finite values in 0..255")
        imgs = x.reshape(-1, 28, 28, 4).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        out += [imgs, _labels_from_one_hot(y, names[f"y_{split}"])]
    return ImageData("sat4", *out, source=f"sat4 CSV files in {directory!r}")
