"""Atomic file writes (temporary file in the same directory, fsync, rename): an
interrupted write leaves the previous file intact. Torch-free."""

from __future__ import annotations

import os
import tempfile


def write_bytes_atomic(path: str, data: bytes, suffix: str = "") -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=d)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
