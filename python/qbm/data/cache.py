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
