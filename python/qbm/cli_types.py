"""argparse value types for the command line: a bad value becomes
``qbm: error: argument --epochs: must be an integer >= 1, got '0'`` (exit status 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from qbm._validate import MAX_SHOTS


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"must be an integer {rng}, got {text!r}")
        return v

    parse.__name__ = "integer"
    return parse


def float_range(lo: float, *, open_lo: bool = True, hi: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(v) or v < lo or (open_lo and v == lo) or (hi is not None and v > hi):
            rng = f"{'>' if open_lo else '>='} {lo}" + ("" if hi is None else f" and <= {hi}")
            raise argparse.ArgumentTypeError(f"must be a finite number {rng}, got {text!r}")
        return v

    parse.__name__ = "number"
    return parse


positive_int = int_range(1)
nonneg_int = int_range(0)
seed_int = int_range(0, 2**63 - 1)
positive_float = float_range(0.0)


def positive_ratio(text: str) -> float:
    """A number > 0, also written as a fraction "a/b" (``--gumbel-tau 1/7``)."""
    num, sep, den = text.partition("/")
    try:
        v = float(num) / float(den) if sep else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction a/b, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return v


positive_ratio.__name__ = "number"
nonneg_float = float_range(0.0, open_lo=False)
unit_float = float_range(0.0, open_lo=False, hi=1.0)
threads_int = int_range(1, 1024)
shots_int = int_range(2, MAX_SHOTS)
