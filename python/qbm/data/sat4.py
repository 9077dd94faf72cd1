"""SAT-4 (DeepSat): 28 x 28 x 4 (R, G, B, NIR) patches, 4 classes (barren land, trees,
grassland, other), from a local directory holding either the public ``sat-4-full.mat``
(keys train_x (28, 28, 4, N), train_y (4, N), test_x, test_y) or its CSV files
(``X_train_sat4.csv`` with 3136 values per row in (28, 28, 4) order, ``y_train_sat4.csv``
one-hot with 4 columns, and the ``test`` pair). Label arrays are accepted as (4, N) or
(N, 4) (published descriptions differ).

The decoded images are kept as uint8 and cached once as ``.npy`` files under qbm's cache
directory (keyed by the files' paths, sizes and times and ``max_per_split``); later loads
memory-map them instead of decompressing the .mat (MATLAB v5 variables are zlib-compressed
and cannot be mapped) or parsing CSV again; CSV is read in chunks straight into uint8.
:func:`write_sat4` writes SAT-4-format files of any size for tests and benches."""

from __future__ import annotations

import os
import warnings

import numpy as np

from qbm.data.cache import file_cache_base, load_npy_cache, try_cache
from qbm.data.images import ImageData
from qbm.data.registry import DataSet, register

CLASSES = ("barren land", "trees", "grassland", "other")


def _from_mat(path: str, max_per_split: int | None) -> tuple[np.ndarray, ...]:
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
        xs = x[..., :n]
        if xs.dtype != np.uint8:
            if not np.all(np.isfinite(xs)) or xs.min() < 0 or xs.max() > 255:
                raise ValueError(f"path: {path!r}: pixels must be finite values in 0..255")
            xs = xs.astype(np.uint8)
        imgs = np.ascontiguousarray(np.transpose(xs, (3, 2, 0, 1)))
        return imgs, _labels_from_one_hot(y[:, :n].T, path)

    ytr, yte = (_as_4xn(m[k], m[k.replace("_y", "_x")].shape[3], path) for k in ("train_y", "test_y"))
    xtr, ltr = split(m["train_x"], ytr)
    xte, lte = split(m["test_x"], yte)
    return xtr, ltr, xte, lte


def _as_4xn(y: np.ndarray, n: int, path: str) -> np.ndarray:
    """Labels as (4, N) whether stored (4, N) or (N, 4)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape == (n, 4) and n != 4:
        return y.T
    return y


def _labels_from_one_hot(y: np.ndarray, path: str) -> np.ndarray:
    """(N, 4) one-hot rows -> labels; NaN, non-0/1 values or rows without exactly one 1
    are errors naming the file."""
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"path: {path!r}: labels contain NaN or inf")
    if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
        raise ValueError(f"path: {path!r}: labels must be one-hot rows of 4 values (exactly one 1 per row)")
    return np.argmax(y, axis=1).astype(np.int64)


def _read_csv(path: str, cols: int, max_rows: int | None, chunk: int = 20000) -> np.ndarray:
    """Rows of a CSV file read ``chunk`` at a time (float64 only per chunk)."""
    parts = []
    got = 0
    with open(path) as fh:
        while max_rows is None or got < max_rows:
            want = chunk if max_rows is None else min(chunk, max_rows - got)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # an empty tail chunk is not worth a warning
                    a = np.loadtxt(fh, delimiter=",", max_rows=want, ndmin=2)
            except ValueError as e:
                raise ValueError(f"path: {path!r} is malformed ({e})") from None
            if a.shape[0] == 0:
                break
            if a.shape[1] != cols:
                raise ValueError(f"path: {path!r} has {a.shape[1]} columns per row, expected {cols}")
            if not np.all(np.isfinite(a)):
                what = "pixels" if cols > 4 else "labels"
                raise ValueError(f"path: {path!r}: {what} contain NaN or inf")
            parts.append(a.astype(np.uint8) if cols > 4 and a.min() >= 0 and a.max() <= 255 else a)
            got += a.shape[0]
            if a.shape[0] < want:
                break
    if not parts:
        raise ValueError(f"path: {path!r} has no rows")
    if cols > 4 and any(p.dtype != np.uint8 for p in parts):
        raise ValueError(f"path: {path!r}: pixels must be finite values in 0..255")
    return np.concatenate(parts)


def _from_csv(names: dict[str, str], max_per_split: int | None) -> tuple[np.ndarray, ...]:
    out = []
    for split in ("train", "test"):
        x = _read_csv(names[f"X_{split}"], 28 * 28 * 4, max_per_split)
        y = _read_csv(names[f"y_{split}"], 4, max_per_split)
        if len(x) != len(y):
            raise ValueError(f"path: {split} images ({len(x)}) and labels ({len(y)}) differ in count")
        imgs = np.ascontiguousarray(x.reshape(-1, 28, 28, 4).transpose(0, 3, 1, 2))
        out += [imgs, _labels_from_one_hot(y, names[f"y_{split}"])]
    return tuple(out)


KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_sat4_uint8(directory: str, max_per_split: int | None = None, cache: bool = True) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test): images (N, 4, 28, 28) uint8 (memory-mapped from
    the cache when it exists) and int64 labels."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"path: SAT-4 directory {directory!r} does not exist")
    mat = os.path.join(directory, "sat-4-full.mat")
    names = {k: os.path.join(directory, f"{k}_sat4.csv") for k in ("X_train", "y_train", "X_test", "y_test")}
    if os.path.exists(mat):
        files = [mat]
    else:
        missing = [p for p in names.values() if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"path: SAT-4 files not found in {directory!r}: need sat-4-full.mat or "
                f"X_train_sat4.csv, y_train_sat4.csv, X_test_sat4.csv, y_test_sat4.csv (missing "
                f"{', '.join(os.path.basename(p) for p in missing)})"
            )
        files = list(names.values())
    base = file_cache_base("sat4", files, max_per_split) if cache else None
    if base and all(os.path.exists(f"{base}-{k}.npy") for k in KEYS):
        got = [load_npy_cache(f"{base}-{k}.npy", mmap=k[0] == "x") for k in KEYS]
        if all(a is not None for a in got) and len(got[0]) == len(got[1]) and len(got[2]) == len(got[3]):
            return tuple(got)  # type: ignore[return-value]
        # a damaged (truncated, empty) or inconsistent cache: decode again
    arrays = _from_mat(mat, max_per_split) if files == [mat] else _from_csv(names, max_per_split)
    if base:
        for k, a in zip(KEYS, arrays):
            try_cache(f"{base}-{k}.npy", a)
    return arrays


def load_sat4(directory: str, max_per_split: int | None = None, cache: bool = True) -> ImageData:
    """SAT-4 as :class:`ImageData` with uint8 images (memory-mapped from the cache when it
    exists: 1.25 GB for the full training set instead of 5 GB as float32), converted to
    float per batch by their users."""
    xtr, ytr, xte, yte = load_sat4_uint8(directory, max_per_split, cache)
    return ImageData("sat4", xtr, np.asarray(ytr), xte, np.asarray(yte), source=f"sat4 files in {directory!r}")


def write_sat4(
    directory: str, n_train: int, n_test: int, *, fmt: str = "mat", seed: int = 0, labels: str = "4xN"
) -> None:
    """SAT-4-format files of any size (``fmt`` "mat" or "csv"; label arrays "4xN" or
    "Nx4" in the .mat): patches whose class sets the mean of each band, so a classifier
    can tell them apart; written in chunks for the CSV form."""
    if fmt not in ("mat", "csv"):
        raise ValueError(f"fmt: choose 'mat' or 'csv', got {fmt!r}")
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    means = np.array([[150, 120, 100, 90], [40, 90, 50, 200], [90, 150, 70, 160], [120, 120, 130, 110]])

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 4, n)
        x = means[y][:, None, None, :] + rng.normal(0, 25, (n, 28, 28, 4)).astype(np.float32)
        return np.clip(x, 0, 255).astype(np.uint8), np.eye(4, dtype=np.uint8)[y]

    if fmt == "mat":
        import scipy.io

        out = {}
        for split, n in (("train", n_train), ("test", n_test)):
            xs = np.empty((28, 28, 4, n), dtype=np.uint8)  # the file's layout, filled in chunks
            ys = np.empty((n, 4), dtype=np.uint8)
            for s in range(0, n, 10000):
                x, y = make(min(10000, n - s))
                xs[..., s : s + len(x)] = np.transpose(x, (1, 2, 3, 0))
                ys[s : s + len(y)] = y
            out[f"{split}_x"] = xs  # (28, 28, 4, N)
            out[f"{split}_y"] = ys.T if labels == "4xN" else ys
        scipy.io.savemat(os.path.join(directory, "sat-4-full.mat"), out, do_compression=True)
        return
    for split, n in (("train", n_train), ("test", n_test)):
        with (
            open(os.path.join(directory, f"X_{split}_sat4.csv"), "w") as fx,
            open(os.path.join(directory, f"y_{split}_sat4.csv"), "w") as fy,
        ):
            for s in range(0, n, 10000):
                x, y = make(min(10000, n - s))
                np.savetxt(fx, x.reshape(len(x), -1), fmt="%d", delimiter=",")
                np.savetxt(fy, y, fmt="%d", delimiter=",")


def _check_sat4(data_dir: str) -> None:
    mat = os.path.join(data_dir, "sat-4-full.mat")
    csvs = [os.path.join(data_dir, f"{k}_sat4.csv") for k in ("X_train", "y_train", "X_test", "y_test")]
    if not os.path.exists(mat) and not all(os.path.exists(p) for p in csvs):
        raise FileNotFoundError(
            f"--data-dir: SAT-4 files not found in {data_dir!r}: need sat-4-full.mat or "
            "X_train_sat4.csv, y_train_sat4.csv, X_test_sat4.csv, y_test_sat4.csv"
        )


register(DataSet("sat4", 4, lambda d: load_sat4(d), _check_sat4))
