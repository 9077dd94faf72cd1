"""The downloader's real code against a local HTTP server in the test process: good,
truncated, corrupted and missing files, and a transfer that breaks off and resumes."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import threading

import numpy as np
import pytest

from qbm.data.download import DownloadError, fetch, payload_digest


def _idx_gz(seed: int) -> tuple[bytes, str]:
    """A small IDX file, gzipped, and the digest of its payload."""
    from qbm.data.images import write_idx

    rng = np.random.default_rng(seed)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x")
        write_idx(p, rng.integers(0, 256, (20, 4, 4), dtype=np.uint8))
        raw = open(p, "rb").read()
    return gzip.compress(raw), hashlib.sha256(raw).hexdigest()


class Server:
    """Serves ``files`` (path -> bytes) with Range support; paths in ``cut`` send their
    full Content-Length but only the first ``cut[path]`` bytes, then close (a dropped
    connection), once."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(body):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                n = outer.cut.pop(self.path, None)
                if n is not None:
                    self.wfile.write(body[start : start + n])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.close()


def _files(server, prefix="/good/", n=2):
    digests = {}
    for k in range(n):
        body, digest = _idx_gz(k)
        server.files[f"{prefix}f{k}.gz"] = body
        digests[f"f{k}"] = digest
    return digests


def test_good_files_are_fetched_and_verified(server, tmp_path):
    digests = _files(server)
    d = fetch("test", str(tmp_path / "c"), mirrors=[server.url + "/good/"], digests=digests, progress=False)
    for stem, digest in digests.items():
        assert payload_digest(os.path.join(d, stem + ".gz")) == digest
    assert sorted(os.listdir(d)) == ["f0.gz", "f1.gz"]  # no .part left
    n = len(server.requests)
    fetch("test", d, mirrors=[server.url + "/good/"], digests=digests, progress=False)
    assert len(server.requests) == n  # verified files are not fetched again


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_truncated_or_corrupted_files_are_refused_naming_the_file(server, tmp_path, damage):
    digests = _files(server, "/bad/")
    body = server.files["/bad/f1.gz"]
    if damage == "truncated":
        server.files["/bad/f1.gz"] = body[: len(body) // 2]  # served whole, with its own (short) length
    else:
        b = bytearray(body)
        b[len(b) // 2] ^= 0xFF
        server.files["/bad/f1.gz"] = bytes(b)
    target = tmp_path / "c"
    with pytest.raises(DownloadError, match=r"f1\.gz.*refused") as e:
        fetch("test", str(target), mirrors=[server.url + "/bad/"], digests=digests, progress=False)
    assert "f0" not in str(e.value).split("could not fetch")[1]
    assert sorted(os.listdir(target)) == ["f0.gz"]  # f1: nothing half-written, no .part


def test_a_missing_file_tries_the_next_mirror_then_names_every_failure(server, tmp_path):
    digests = _files(server, "/second/")
    d = fetch("test", str(tmp_path / "c"), mirrors=[server.url + "/first/", server.url + "/second/"],
              digests=digests, progress=False)  # fmt: skip
    assert sorted(os.listdir(d)) == ["f0.gz", "f1.gz"]
    with pytest.raises(DownloadError, match=r"f0\.gz.*HTTP 404.*HTTP 404"):
        fetch("test", str(tmp_path / "d"), mirrors=[server.url + "/x/", server.url + "/y/"], digests=digests,
              progress=False)  # fmt: skip
    assert os.listdir(tmp_path / "d") == []


def test_an_interrupted_transfer_resumes_with_a_range_request(server, tmp_path):
    digests = _files(server, "/r/", n=1)
    body = server.files["/r/f0.gz"]
    server.cut["/r/f0.gz"] = len(body) // 3
    target = tmp_path / "c"
    with pytest.raises(DownloadError, match="interrupted"):
        fetch("test", str(target), mirrors=[server.url + "/r/"], digests=digests, progress=False)
    part = target / "f0.gz.part"
    assert part.exists() and part.stat().st_size == len(body) // 3
    assert not (target / "f0.gz").exists()
    fetch("test", str(target), mirrors=[server.url + "/r/"], digests=digests, progress=False)
    assert server.requests[-1][1] == f"bytes={len(body) // 3}-"  # resumed, not restarted
    assert (target / "f0.gz").read_bytes() == body and not part.exists()


def test_unknown_data_set_is_refused():
    with pytest.raises(ValueError, match="name"):
        fetch("cifar10")


def test_the_cli_fetches_into_a_directory_and_the_loader_reads_it(server, tmp_path, monkeypatch, capsys):
    """`qbm data get` and `--download` on the real IDX layout (small files, their digests
    patched in for the test; the built-in digests are those of the published files)."""
    from qbm.cli import main
    from qbm.data import download, load_dataset
    from qbm.data.images import write_idx

    rng = np.random.default_rng(0)
    digests = {}
    for stem, shape, hi in (
        ("train-images-idx3-ubyte", (30, 28, 28), 256),
        ("train-labels-idx1-ubyte", (30,), 10),
        ("t10k-images-idx3-ubyte", (10, 28, 28), 256),
        ("t10k-labels-idx1-ubyte", (10,), 10),
    ):
        p = tmp_path / stem
        write_idx(str(p), rng.integers(0, hi, shape, dtype=np.uint8))
        raw = p.read_bytes()
        server.files[f"/m/{stem}.gz"] = gzip.compress(raw)
        digests[stem] = hashlib.sha256(raw).hexdigest()  # fmt: skip
    monkeypatch.setitem(download.DIGESTS, "mnist", digests)
    monkeypatch.setitem(download.MIRRORS, "mnist", [server.url + "/m/"])
    target = tmp_path / "mnist"
    assert main(["data", "get", "mnist", "--dir", str(target), "--quiet"]) == 0
    assert "verified" in capsys.readouterr().out
    assert load_dataset("mnist", str(target)).x_train.shape == (30, 1, 28, 28)
    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    from qbm.commands.data import resolve_download
    import argparse

    args = argparse.Namespace(download=True, dataset="mnist", data_dir=None, quiet=True)
    resolve_download(args)
    assert args.data_dir == str(tmp_path / "cache" / "datasets" / "mnist")
    assert load_dataset("mnist", args.data_dir).x_test.shape == (10, 1, 28, 28)
