"""Small matplotlib helpers (Agg backend, files only)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_curves(
    path: str, series: dict[str, Any], *, xlabel: str = "step", ylabel: str = "", logy: bool = False, title: str = ""
) -> None:
    """Curves of ``series`` (name -> values, or (x, y) pairs). ``logy``: a log axis; where a
    series holds values <= 0 (an unbiased MMD estimate can be negative) the axis is
    symmetric-log, linear within the smallest positive magnitude, so no point is dropped."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ys_all = []
    for name, ys in series.items():
        ys = np.asarray(ys, dtype=float)
        if ys.ndim == 2:  # (x, y) pairs
            ax.plot(ys[:, 0], ys[:, 1], marker="o", label=name)
            ys_all.append(ys[:, 1])
        else:
            ax.plot(np.arange(len(ys)), ys, label=name)
            ys_all.append(ys)
    if logy:
        y = np.concatenate(ys_all) if ys_all else np.zeros(0)
        y = y[np.isfinite(y)]
        if y.size and (y <= 0).any():
            pos = np.abs(y[y != 0])
            ax.set_yscale("symlog", linthresh=float(pos.min()) if pos.size else 1e-12)
            ylabel = f"{ylabel} (symlog: values <= 0 shown)".strip()
        else:
            ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_image_grid(
    path: str, images: Any, *, rows: int | None = None, title: str = "", row_labels: list[str] | None = None
) -> None:
    """images: (N, H, W) or (N, H, W, C) in [0, 1]."""
    plt = _plt()
    imgs = np.asarray(images, dtype=float)
    n = len(imgs)
    cols = int(np.ceil(np.sqrt(n))) if rows is None else int(np.ceil(n / rows))
    rows = int(np.ceil(n / cols)) if rows is None else rows
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + (0.3 if title else 0)), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < n:
            im = imgs[k]
            if im.ndim == 3 and im.shape[-1] == 1:
                im = im[..., 0]
            if im.ndim == 3 and im.shape[-1] == 4:
                im = im[..., :3]
            ax.imshow(np.clip(im, 0, 1), cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=1)
    if row_labels:
        for r, lab in enumerate(row_labels[:rows]):
            axes[r, 0].set_title(lab, fontsize=7, loc="left")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
