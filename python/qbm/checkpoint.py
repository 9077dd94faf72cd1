"""Checkpoints: atomic, checksummed, and loaded without executing pickled code.

File layout: the magic ``QBMCKPT1``, the SHA-256 of the payload (32 bytes), then the
payload written by ``torch.save``. The payload holds only containers, numbers, strings,
tensors and numpy arrays (stored as tensors and converted back), so it is loaded with
``torch.load(weights_only=True)``: a checkpoint from an untrusted source cannot run code.
A flipped byte fails the checksum and is refused with an error naming the file.

Writing goes to a temporary file in the same directory, fsync, then an atomic rename:
an interrupted write (or a full disk) leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

import numpy as np
import torch

from qbm._atomic import write_bytes_atomic

MAGIC = b"QBMCKPT1"
_ND = "__qbm_ndarray__"


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {_ND: torch.from_numpy(np.ascontiguousarray(obj).copy()), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_encode(v) for v in obj)
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _ND in obj and len(obj) == 2:
            return obj[_ND].numpy().astype(obj["dtype"], copy=False)
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_decode(v) for v in obj)
    return obj


def dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(_encode(obj), buf)
    payload = buf.getvalue()
    return MAGIC + hashlib.sha256(payload).digest() + payload


def loads(data: bytes, path: str = "<bytes>") -> Any:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 32:
        raise ValueError(f"model: {path!r} is not a qbm checkpoint (no qbm header; written by another program?)")
    digest, payload = data[len(MAGIC) : len(MAGIC) + 32], data[len(MAGIC) + 32 :]
    if hashlib.sha256(payload).digest() != digest:
        raise ValueError(f"model: {path!r} is corrupt (checksum mismatch); it was changed after it was written")
    try:
        obj = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - report any failure as an unreadable file
        raise ValueError(f"model: {path!r} is not a readable qbm checkpoint ({type(e).__name__}: {e})") from None
    return _decode(obj)


def save_atomic(obj: Any, path: str) -> None:
    write_bytes_atomic(path, dumps(obj), suffix=".pt")


def load_file(path: str) -> Any:
    """Any object written by :func:`save_atomic` (checksum verified)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"model: checkpoint {path!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"model: {path!r} is a directory, not a checkpoint file")
    with open(path, "rb") as fh:
        return loads(fh.read(), path)


def load_checkpoint(path: str) -> dict[str, Any]:
    """A training checkpoint (a dict with ``kind`` and ``model_state``)."""
    ck = load_file(path)
    if not isinstance(ck, dict) or "kind" not in ck or "model_state" not in ck:
        raise ValueError(f"model: {path!r} is not a qbm checkpoint (missing keys)")
    return ck


class BestWeights:
    """Early stopping on a validation score: remembers the best epoch's weights of a module
    and says when ``patience`` epochs have passed without a better score. ``better(new,
    best)`` decides what "better" means (higher accuracy, lower loss by a margin, ...)."""

    def __init__(self, patience: int, better: Any, start: float) -> None:
        self.patience, self.better = patience, better
        self.best, self.best_epoch, self.state = start, 0, None

    def update(self, epoch: int, score: float, module: Any) -> bool:
        """Record epoch ``epoch``'s (1-based) score; True when training should stop."""
        if self.better(score, self.best):
            self.best, self.best_epoch = score, epoch
            self.state = {k: t.detach().clone() for k, t in module.state_dict().items()}
            return False
        return epoch - self.best_epoch >= self.patience

    def restore(self, module: Any) -> None:
        if self.state is not None:
            module.load_state_dict(self.state)
