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
    """images: (N, H, W) or (N, H, W, C) in [0, 1], tiled into one mosaic (one axes: a
    grid of 240 images took 5 s as one axes per image, 0.2 s this way); row labels at the
    left of their row."""
    plt = _plt()
    imgs = np.clip(np.asarray(images, dtype=float), 0, 1)
    if imgs.ndim == 4 and imgs.shape[-1] == 1:
        imgs = imgs[..., 0]
    if imgs.ndim == 4 and imgs.shape[-1] == 4:
        imgs = imgs[..., :3]
    n = len(imgs)
    cols = int(np.ceil(np.sqrt(n))) if rows is None else int(np.ceil(n / rows))
    rows = int(np.ceil(n / cols)) if rows is None else rows
    h, w = imgs.shape[1:3]
    gap = max(1, h // 8)
    colour = imgs.ndim == 4
    shape = (rows * (h + gap) + gap, cols * (w + gap) + gap) + ((imgs.shape[-1],) if colour else ())
    mosaic = np.ones(shape)  # white gaps between the tiles
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        mosaic[y : y + h, x : x + w] = imgs[k]
    label_w = 2.2 if row_labels else 0.0
    fig_w = cols * 0.9 + label_w
    fig = plt.figure(figsize=(fig_w, rows * 0.9 + (0.3 if title else 0)))
    ax = fig.add_axes((label_w / fig_w, 0.0, 1 - label_w / fig_w, 1.0 if not title else 1 - 0.3 / fig.get_figheight()))
    ax.imshow(mosaic, cmap=None if colour else "gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if row_labels:
        for r, lab in enumerate(row_labels[:rows]):
            ax.text(-gap, gap + r * (h + gap) + h / 2, lab, fontsize=7, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9, y=0.995)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
