"""CelebA from a local directory in its published layout (qbm never downloads).

Expected in ``data_dir`` (the files of the official release, or the same names with a
``.csv`` suffix as some mirrors ship them):

* ``img_align_celeba/`` (or ``img_align_celeba/img_align_celeba/``): aligned 178 x 218 JPEGs;
* ``list_attr_celeba.txt``: a count line, a line of 40 attribute names, then one line per
  image: file name and 40 values in {-1, 1} (CSV: a header ``image_id,<names>``);
* ``list_eval_partition.txt``: file name and partition 0 (train), 1 (validation), 2 (test).

Images are centre-cropped to ``crop`` x ``crop`` pixels (140, the usual choice for aligned
faces), resized to ``size`` x ``size`` (box filter) and kept as uint8 until the end. The
decoded arrays are cached as uint8 ``.npy`` files (memory-mapped on reuse) under qbm's cache
directory, keyed by the directory, its index files' sizes and times, and the options.
Labels: one attribute (default ``Smiling``) as 0 / 1 for c-QA and the judge; all 40 are
kept in ``attributes_train`` / ``attributes_test`` (c-QA conditions on one at a time).
The validation partition joins the training split (qbm takes its own validation split of
the training images where it needs one).
"""

from __future__ import annotations

import os

import numpy as np

from qbm.data.cache import file_cache_base, load_npy_cache, try_cache
from qbm.data.images import ImageData
from qbm.data.registry import DataSet, register

ATTR_FILES = ("list_attr_celeba.txt", "list_attr_celeba.csv")
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")
IMAGE_DIRS = ("img_align_celeba/img_align_celeba", "img_align_celeba")


def _first(data_dir: str, names: tuple[str, ...], what: str) -> str:
    for n in names:
        p = os.path.join(data_dir, n)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"--data-dir: no CelebA {what} in {data_dir!r} (looked for {', '.join(names)})")


def find_files(data_dir: str) -> tuple[str, str, str]:
    """(attribute file, partition file, image directory); a missing one is named."""
    attr = _first(data_dir, ATTR_FILES, "attribute file")
    part = _first(data_dir, PARTITION_FILES, "partition file")
    img = next((os.path.join(data_dir, d) for d in IMAGE_DIRS if os.path.isdir(os.path.join(data_dir, d))), None)
    if img is None:
        raise FileNotFoundError(f"--data-dir: no CelebA image directory in {data_dir!r} (img_align_celeba/)")
    return attr, part, img


def read_attributes(path: str) -> tuple[list[str], list[str], np.ndarray]:
    """(file names, attribute names, values (N, A) int8 in {0, 1})."""
    with open(path) as fh:
        lines = [ln.strip() for ln in fh if ln.strip()]
    if path.endswith(".csv"):
        names = lines[0].split(",")[1:]
        rows = [ln.split(",") for ln in lines[1:]]
    else:
        if len(lines) < 2:
            raise ValueError(f"{path}: expected a count line and a line of attribute names")
        names = lines[1].split()
        rows = [ln.split() for ln in lines[2:]]
        if lines[0].isdigit() and int(lines[0]) != len(rows):
            raise ValueError(f"{path}: the first line says {lines[0]} images but {len(rows)} lines follow")
    files = []
    vals = np.empty((len(rows), len(names)), dtype=np.int8)
    for k, r in enumerate(rows):
        if len(r) != len(names) + 1:
            raise ValueError(f"{path}: line {k + 3} has {len(r) - 1} values for {len(names)} attributes")
        files.append(r[0])
        try:
            v = np.asarray([int(x) for x in r[1:]])
        except ValueError as e:
            raise ValueError(f"{path}: line {k + 3}: {e}") from None
        if not np.all(np.isin(v, (-1, 1))):
            raise ValueError(f"{path}: line {k + 3}: attribute values must be -1 or 1")
        vals[k] = (v > 0).astype(np.int8)
    return files, names, vals


def read_partition(path: str) -> dict[str, int]:
    out = {}
    with open(path) as fh:
        for k, ln in enumerate(fh):
            ln = ln.strip()
            if not ln or ln.startswith("image_id"):
                continue
            parts = ln.replace(",", " ").split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{path}: line {k + 1}: expected '<file> <0|1|2>', got {ln!r}")
            out[parts[0]] = int(parts[1])
    return out


def _decode(paths: list[str], size: int, crop: int) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    for k, p in enumerate(paths):
        with Image.open(p) as im:
            im = im.convert("RGB")
            w, h = im.size
            c = min(crop, w, h)
            left, top = (w - c) // 2, (h - c) // 2
            im = im.crop((left, top, left + c, top + c)).resize((size, size), Image.Resampling.BOX)
            out[k] = np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    return out


def load_celeba(
    data_dir: str,
    *,
    size: int = 32,
    crop: int = 140,
    attribute: str = "Smiling",
    max_images: int | None = None,
    cache: bool = True,
) -> ImageData:
    """CelebA as :class:`ImageData` (see the module docs); ``max_images`` caps each split."""
    if size < 4 or size % 4:
        raise ValueError(f"size: must be a positive multiple of 4, got {size}")
    if crop < size:
        raise ValueError(f"crop: must be >= size ({size}), got {crop}")
    attr, part, img_dir = find_files(data_dir)
    files, names, vals = read_attributes(attr)
    if attribute not in names:
        raise ValueError(f"attribute: {attribute!r} is not a CelebA attribute; choose one of {', '.join(names)}")
    partition = read_partition(part)
    missing = [f for f in files if f not in partition]
    if missing:
        raise ValueError(f"{part}: no partition for {len(missing)} images (first: {missing[0]})")
    split = np.asarray([partition[f] for f in files])
    idx_tr = np.flatnonzero(split != 2)[:max_images]
    idx_te = np.flatnonzero(split == 2)[:max_images]
    opts = (size, crop, max_images)
    base = file_cache_base("celeba", [attr, part], opts) if cache else None
    arrays = {}
    for name, idx in (("train", idx_tr), ("test", idx_te)):
        path = f"{base}-{name}.npy" if base else None
        if path:
            cached = load_npy_cache(path, shape=(len(idx), 3, size, size))  # None: missing or damaged
            if cached is not None:
                arrays[name] = cached
                continue
        paths = [os.path.join(img_dir, files[i]) for i in idx]
        for p in paths[:1] + paths[-1:]:
            if not os.path.exists(p):
                raise FileNotFoundError(f"--data-dir: CelebA image {p!r} listed in {attr} does not exist")
        arr = _decode(paths, size, crop)
        if path:
            try_cache(path, arr)
        arrays[name] = arr
    a = names.index(attribute)
    data = ImageData(
        "celeba",
        np.asarray(arrays["train"], dtype=np.float32) / 255.0,
        vals[idx_tr, a].astype(np.int64),
        np.asarray(arrays["test"], dtype=np.float32) / 255.0,
        vals[idx_te, a].astype(np.int64),
        source=data_dir,
    )
    data.attributes_train, data.attributes_test = vals[idx_tr], vals[idx_te]
    data.attribute_names = tuple(names)
    return data


def _check_celeba(data_dir: str) -> None:
    find_files(data_dir)


register(DataSet("celeba", 2, lambda d: load_celeba(d), _check_celeba))
