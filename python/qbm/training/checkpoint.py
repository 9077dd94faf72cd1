"""Atomic checkpoints: write to a temporary file in the same directory, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch


def save_atomic(obj: Any, path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=d)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"model: checkpoint {path!r} does not exist")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - report any unpickling failure as a corrupt file
        raise ValueError(f"model: {path!r} is not a readable qbm checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ck, dict) or "kind" not in ck or "model_state" not in ck:
        raise ValueError(f"model: {path!r} is not a qbm checkpoint (missing keys)")
    return ck
