"""Loaders validate what they return: crafted IDX, SAT-4 CSV and .mat files with bad
labels, NaN pixels, mismatched shapes, no rows, or a gzip bomb are refused with an error
naming the file and the field, before any training starts."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

from qbm.data.images import ImageData, load_mnist, read_idx, write_idx
from qbm.data.sat4 import load_sat4


def _mnist_dir(tmp_path, *, train_labels=None, test_images=None, n=20):
    rng = np.random.default_rng(0)
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(str(d / "train-images-idx3-ubyte.gz"), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    labels = rng.integers(0, 10, n).astype(np.uint8) if train_labels is None else train_labels
    write_idx(str(d / "train-labels-idx1-ubyte.gz"), labels)
    ti = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if test_images is None else test_images
    write_idx(str(d / "t10k-images-idx3-ubyte.gz"), ti)
    write_idx(str(d / "t10k-labels-idx1-ubyte.gz"), rng.integers(0, 10, len(ti)).astype(np.uint8))
    return str(d)


def test_valid_mnist_loads(tmp_path):
    data = load_mnist(_mnist_dir(tmp_path))
    assert data.x_train.shape == (20, 1, 28, 28) and data.num_classes <= 10


def test_labels_out_of_range_are_refused(tmp_path):
    bad = np.array([0, 1, 12] + [3] * 17, dtype=np.uint8)
    with pytest.raises(ValueError, match=r"mnist in .*y_train labels out of range \[0, 12\]"):
        load_mnist(_mnist_dir(tmp_path, train_labels=bad))


def test_train_and_test_shapes_must_agree(tmp_path):
    with pytest.raises(ValueError, match="train images .* and test images .* differ"):
        load_mnist(_mnist_dir(tmp_path, test_images=np.zeros((5, 14, 14), dtype=np.uint8)))


@pytest.mark.parametrize("field", ["x_train", "x_test"])
def test_nan_or_inf_pixels_are_refused(field):
    x = np.full((4, 1, 8, 8), 0.5, dtype=np.float32)
    bad = x.copy()
    bad[1, 0, 2, 3] = np.nan if field == "x_train" else np.inf
    args = dict(x_train=x, y_train=np.zeros(4, dtype=np.int64), x_test=x, y_test=np.zeros(4, dtype=np.int64))
    args[field] = bad
    with pytest.raises(ValueError, match=f"{field} contains NaN or infinite pixels"):
        ImageData("digits", **args)


def test_gzip_bomb_is_refused_before_decompressing(tmp_path):
    """A tiny .gz whose IDX header declares 10^12 bytes: refused from the header, long
    before 1 TB would be decompressed."""
    p = tmp_path / "bomb-idx3-ubyte.gz"
    head = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 10**6, 1000, 1000)
    with gzip.open(p, "wb") as fh:
        fh.write(head + bytes(1 << 20))  # 1 MiB of zeros compresses to ~1 KiB
    assert os.path.getsize(p) < 20000
    with pytest.raises(ValueError, match="declares 1000000000000 bytes"):
        read_idx(str(p))


def test_truncated_and_padded_idx(tmp_path):
    p = tmp_path / "a-idx1-ubyte"
    write_idx(str(p), np.arange(10, dtype=np.uint8))
    raw = p.read_bytes()
    p.write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="truncated or padded"):
        read_idx(str(p))
    p.write_bytes(raw + b"\0")
    with pytest.raises(ValueError, match="truncated or padded"):
        read_idx(str(p))


def _sat4_csv(d, *, x_rows=3, y=None, x_val=100.0):
    d.mkdir(exist_ok=True)
    x = np.full((x_rows, 3136), x_val)
    yy = np.eye(4)[np.arange(x_rows) % 4] if y is None else y
    for split in ("train", "test"):
        np.savetxt(d / f"X_{split}_sat4.csv", x, delimiter=",")
        np.savetxt(d / f"y_{split}_sat4.csv", yy, delimiter=",")
    return str(d)


def test_sat4_csv_valid_and_crafted(tmp_path):
    data = load_sat4(_sat4_csv(tmp_path / "ok"))
    assert data.x_train.shape == (3, 4, 28, 28)
    y = np.eye(4)[[0, 1, 2]]
    y[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"y_train_sat4.csv.*NaN"):
        load_sat4(_sat4_csv(tmp_path / "nan", y=y))
    with pytest.raises(ValueError, match="one-hot"):
        load_sat4(_sat4_csv(tmp_path / "twohot", y=np.ones((3, 4))))
    with pytest.raises(ValueError, match="pixels"):
        load_sat4(_sat4_csv(tmp_path / "px", x_val=np.nan))
    empty = tmp_path / "empty"
    _sat4_csv(empty)
    (empty / "X_train_sat4.csv").write_text("")
    with pytest.raises(ValueError, match="X_train_sat4.csv.*(no rows|malformed)"):
        load_sat4(str(empty))


@pytest.mark.parametrize("fmt,labels", [("mat", "4xN"), ("mat", "Nx4"), ("csv", "4xN")])
def test_sat4_written_files_load_eagerly_and_memory_mapped_alike(tmp_path, monkeypatch, fmt, labels):
    """write_sat4 files at a given size; the first load decodes them into uint8 caches, the
    second memory-maps the caches and returns the same arrays; labels as (4, N) or (N, 4)."""
    from qbm.data.sat4 import load_sat4_uint8, write_sat4

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    d = str(tmp_path / f"sat4-{fmt}-{labels}")
    write_sat4(d, 37, 11, fmt=fmt, labels=labels, seed=3)
    eager = load_sat4_uint8(d, cache=False)
    first = load_sat4_uint8(d)
    second = load_sat4_uint8(d)
    assert isinstance(second[0], np.memmap) and second[0].dtype == np.uint8
    assert eager[0].shape == (37, 4, 28, 28) and eager[2].shape == (11, 4, 28, 28)
    for a, b, c in zip(eager, first, second):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert set(np.unique(eager[1])) <= {0, 1, 2, 3}
    data = load_sat4(d)  # uint8 and memory-mapped; float only per batch
    assert isinstance(data.x_train, np.memmap) and data.x_train.dtype == np.uint8
    np.testing.assert_array_equal(data.rows("train"), eager[0].astype(np.float32) / 255)
    idx = np.array([5, 1, 30])
    np.testing.assert_array_equal(data.rows("train", idx), eager[0][idx].astype(np.float32) / 255)
    # a changed file is a new cache key
    write_sat4(d, 20, 5, fmt=fmt, labels=labels, seed=4)
    assert load_sat4_uint8(d)[0].shape == (20, 4, 28, 28)


def test_uint8_image_data_converts_per_batch():
    """ImageData keeps uint8 pixels (value / 255); rows() converts only what is asked for;
    float pixels outside [0, 1] and other dtypes are refused, naming the field."""
    from qbm.data import ImageData, iter_float_chunks, to_float01

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 1, 4, 4), dtype=np.uint8)
    d = ImageData("toy", x, np.arange(10) % 2, x[:4], np.arange(4) % 2)
    assert d.rows("train").dtype == np.float32 and d.rows("train").max() <= 1.0
    np.testing.assert_array_equal(d.rows("test", [3, 0]), x[[3, 0]] / np.float32(255))
    chunks = list(iter_float_chunks(x, 3))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(chunks), to_float01(x))
    f = to_float01(x)
    assert to_float01(f) is f  # float32 is not copied
    with pytest.raises(ValueError, match="x_train"):
        ImageData("toy", x.astype(np.int16), np.arange(10) % 2, x[:4], np.arange(4) % 2)
    with pytest.raises(ValueError, match="split"):
        d.rows("val")
