"""Where qbm keeps what it derives from data (decoded data sets, judges), and how.

``QBM_CACHE_DIR`` or ``~/.cache/qbm``. Decoded arrays live under ``data/`` as ``.npy`` files
named by a key of their source files (absolute path, size, modification time) and the
options that shaped them, so a changed file or option gets a new name; they are written
atomically and memory-mapped on reuse.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def cache_dir() -> str:
    return os.environ.get("QBM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "qbm")


def file_cache_base(prefix: str, files: Sequence[str], opts: Any) -> str:
    """``<cache>/data/<prefix>-<key>``: key over the files' paths, sizes and times and ``opts``."""
    h = hashlib.sha256()
    for p in files:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(repr(opts).encode())
    return os.path.join(cache_dir(), "data", f"{prefix}-{h.hexdigest()[:20]}")


def save_npy_atomic(path: str, arr: np.ndarray) -> None:
    """np.save through a temporary file and a rename (readers never see half a file)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path[:-4] if path.endswith('.npy') else path}.{os.getpid()}.tmp.npy"
    np.save(tmp, arr)
    os.replace(tmp, path)


def try_cache(path: str, arr: np.ndarray) -> bool:
    """:func:`save_npy_atomic`, but a cache directory that cannot be written (read-only,
    full) only costs the cache: the data are used from memory and the reason is printed."""
    import sys

    try:
        save_npy_atomic(path, arr)
        return True
    except OSError as e:
        print(f"qbm: cannot write the cache file {path} ({e.strerror or e}); continuing without it", file=sys.stderr)
        return False


def load_npy_cache(path: str, *, mmap: bool = True, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    """A cached ``.npy`` array, or None when it is missing or damaged (truncated, empty,
    a bad header, another shape than ``shape``): a damaged file is named on stderr and
    removed, so the caller decodes the data again and rewrites it."""
    import sys

    if not os.path.exists(path):
        return None
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None)
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise ValueError(f"shape {tuple(arr.shape)}, expected {tuple(shape)}")
        return arr
    except (ValueError, EOFError, OSError) as e:
        print(f"qbm: cache file {path} is damaged ({e}); decoding the data again", file=sys.stderr)
        try:
            os.unlink(path)
        except OSError:
            pass
        return None
