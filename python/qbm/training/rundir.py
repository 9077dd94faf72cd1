"""Run directories: a `train` command never silently replaces a finished or interrupted
run. Rerunning into a directory that holds a checkpoint needs ``--resume`` (continue it,
also to a larger ``--epochs``) or ``--force`` (start over); ``--resume`` with flags that
contradict the checkpoint is an error naming them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any


def check_out_dir(out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out: {out!r} is a file, not a directory")


def precheck(out: str, checkpoint: str, *, resume: bool, force: bool) -> None:
    """What :func:`prepare` would refuse, checked without touching anything (the command
    line calls it before importing torch, so a refusal comes at once)."""
    check_out_dir(out)
    if resume and force:
        raise ValueError("--force: give either --resume (continue) or --force (start over), not both")
    if os.path.exists(os.path.join(out, checkpoint)) and not (resume or force):
        raise ValueError(
            f"--out: {out!r} already holds a run ({checkpoint}); pass --resume to continue it "
            "(also to a larger --epochs) or --force to start over"
        )


def prepare(out: str, checkpoint: str, *, resume: bool, force: bool) -> bool:
    """Decide what to do with ``out``; returns True when an existing run is resumed."""
    precheck(out, checkpoint, resume=resume, force=force)
    ck = os.path.join(out, checkpoint)
    if os.path.exists(ck):  # precheck let it through: --resume or --force was given
        if resume:
            return True
        os.unlink(ck)
        return False
    if resume:
        print(f"note: --resume: no checkpoint in {out}, starting a new run")
    os.makedirs(out, exist_ok=True)
    return False


def conflicts(explicit: Iterable[str], given: Mapping[str, Any], stored: Mapping[str, Any]) -> None:
    """Raise if a flag the user gave explicitly (``explicit``: argparse dests) differs from
    the value stored in the checkpoint. ``given`` and ``stored`` map dest -> value."""
    bad = []
    for dest in sorted(set(explicit) & set(stored)):
        if dest in given and given[dest] != stored[dest]:
            bad.append(f"--{dest.replace('_', '-')} {given[dest]!r} (the run has {stored[dest]!r})")
    if bad:
        raise ValueError(
            "--resume: flags conflict with the checkpoint: " + "; ".join(bad) + ". Drop them to continue the "
            "run as it was, or use --force to start a new run with them"
        )
