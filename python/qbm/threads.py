"""One thread policy for torch and qbm's pools, so they never oversubscribe the cores.

A training step alternates small torch ops (MLPs on batches of 32-128 images) with qbm
sampler calls. torch's intra-op pool gains nothing on such small ops and its OpenMP
workers keep spinning after each op, competing with qbm's sampler threads (measured on a
busy 2-core machine: 5 epochs of a Gaussian VAE took 25 s with torch's default threads
and 0.9 s with one). So:

* torch: ``threads`` intra-op threads (default 1) and one inter-op thread;
* qbm: ``QBM_NUM_THREADS`` = ``threads`` when given, else all cores; small sampler
  calls run on the calling thread anyway (see ``qbm._core``), large ones use the pool
  while torch is idle.

Study runs pin both to ``--threads-per-run`` (see :mod:`qbm.studies.runner`).
"""

from __future__ import annotations

import os


def apply_policy(threads: int | None = None) -> dict[str, int]:
    """Apply the policy in this process; returns what was set."""
    import torch

    t = 1 if threads is None else int(threads)
    torch.set_num_threads(t)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (inter-op threads can be set once per process)
        pass
    if threads is not None:
        os.environ["QBM_NUM_THREADS"] = str(threads)
    from qbm import _core

    return {"torch_threads": torch.get_num_threads(), "qbm_threads": _core.default_threads()}
