"""`qbm data get mnist|fashion-mnist`: fetch a data set's files into qbm's cache (or
``--dir``), verified; and the ``--download`` flag of the commands that load data."""

from __future__ import annotations

import argparse
from typing import Any

from qbm.data.download import DIGESTS

DOWNLOADABLE = tuple(DIGESTS)  # the data sets whose files qbm can fetch and verify


def cmd_get(args: argparse.Namespace) -> int:
    from qbm.data.download import fetch

    d = fetch(args.name, args.dir, mirrors=args.mirror or None, progress=not args.quiet)
    print(f"{args.name}: the four IDX files are verified in {d}; use --dataset {args.name} --data-dir {d}")
    return 0


def resolve_download(args: argparse.Namespace) -> None:
    """``--download``: fetch the data set into qbm's cache unless ``--data-dir`` is given,
    and point ``args.data_dir`` at it (before any directory of the run is made)."""
    if not getattr(args, "download", False):
        return
    if args.dataset not in DOWNLOADABLE:
        raise ValueError(f"--download: qbm downloads {', '.join(DOWNLOADABLE)}; {args.dataset} is read from --data-dir")
    from qbm.data.download import fetch

    args.data_dir = fetch(args.dataset, args.data_dir, progress=not getattr(args, "quiet", False))


def add_download_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--download",
        action="store_true",
        help="fetch MNIST / Fashion-MNIST into qbm's cache first (verified by SHA-256), or into --data-dir",
    )


def add_parsers(sub: Any) -> None:
    data = sub.add_parser("data", help="data sets: fetch MNIST / Fashion-MNIST").add_subparsers(dest="data_cmd")
    g = data.add_parser("get", help="download and verify a data set's IDX files")
    g.add_argument("name", choices=DOWNLOADABLE, help="the data set")
    g.add_argument("--dir", default=None, help="target directory (default: qbm's cache, QBM_CACHE_DIR)")
    g.add_argument("--mirror", nargs="+", default=None, help="base URLs tried instead of the usual mirrors")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.set_defaults(func=cmd_get)
