"""`data download` against a real HTTP server on 127.0.0.1 serving a copy of the upstream tree."""

from __future__ import annotations

import functools
import hashlib
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fleetnas.data.download import download, resolve_data_dir, sha256_file, verify
from fleetnas.data.manifest import FILES, get_file
from fleetnas.errors import DataError, UnknownNameError

SMALL = "help/nasbench201/latency/pixel2.pt"
BIG = "nats/nats_bench.csv"
YAML = "proxylessnas/mobile_trim.yaml"


class _Handler(SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=N-`` support and one-shot connection drops."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        rng = self.headers.get("Range")
        server.requests.append((self.path, rng))
        local = Path(self.translate_path(self.path))
        if not local.is_file():
            self.send_error(404)
            return
        data = local.read_bytes()
        start = 0
        if rng and server.honor_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = server.cut.pop(self.path, None)
        self.wfile.write(body if cut is None else body[:cut])
        self.wfile.flush()
        if cut is not None:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    honor_range = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
        self.requests: list[tuple[str, str | None]] = []
        self.cut: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def path_of(self, rel: str) -> str:
        return "/" + get_file(rel).raw_path


@pytest.fixture
def mirror(tmp_path: Path, data_dir: Path):
    """A raw.githubusercontent.com-like tree with three real files, served on 127.0.0.1."""
    root = tmp_path / "mirror"
    for rel in (SMALL, BIG, YAML):
        target = root / get_file(rel).raw_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / rel, target)
    server = _Server(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.root = root  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


def test_manifest_matches_the_shared_copies(data_dir: Path):
    assert len(FILES) == 106
    assert verify(data_dir) == {}


def test_upstream_urls_are_pinned():
    f = get_file("help/fbnet/latency/pixel2.pt")
    assert f.url() == (
        "https://raw.githubusercontent.com/HayeonLee/HELP/"
        "45f70eb92d0d735970a33b608d1544ad3c52f285/data/fbnet/latency/pixel2.pt"
    )
    assert get_file(BIG).url().endswith("b307ae5fe6e8d7043cd4fe7d1c3532288271adb7/nats_bench.csv")
    han = "han-cai/files/a7c9bcd525e17404968bc55aa43772bf7e51909e/"
    assert get_file(YAML).url().endswith(han + "proxylessnas/mobile_trim.yaml")
    assert get_file("apq/BitFusion_new.b1.dict").url() == (
        "https://raw.githubusercontent.com/mit-han-lab/apq/"
        "428190a6198a522ca8af8e1b509657eb5688b2b0/lut/BitFusion_new.b1.dict"
    )


def test_download_verifies_and_caches(mirror: _Server, tmp_path: Path, data_dir: Path):
    dest = tmp_path / "dest"
    results = download(dest, [SMALL, BIG, YAML], mirror=mirror.url)
    assert [r.status for r in results] == ["downloaded"] * 3
    for rel in (SMALL, BIG, YAML):
        assert sha256_file(dest / rel) == get_file(rel).sha256
        assert (dest / rel).read_bytes() == (data_dir / rel).read_bytes()
    assert not list(dest.rglob("*.part"))
    n = len(mirror.requests)
    again = download(dest, [SMALL, BIG, YAML], mirror=mirror.url)
    assert [r.status for r in again] == ["cached"] * 3
    assert len(mirror.requests) == n


def test_mirror_from_environment(mirror: _Server, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FLEETNAS_DATA_MIRROR", mirror.url)
    monkeypatch.setenv("FLEETNAS_HOME", str(tmp_path / "home"))
    (res,) = download(files=[YAML])
    assert res.status == "downloaded"
    assert sha256_file(tmp_path / "home" / "data" / YAML) == get_file(YAML).sha256


def test_interrupted_download_resumes_with_range(mirror: _Server, tmp_path: Path):
    dest = tmp_path / "dest"
    size = get_file(BIG).size
    cut = 1_000_000
    mirror.cut[mirror.path_of(BIG)] = cut
    with pytest.raises(DataError, match="run the download again to resume"):
        download(dest, [BIG], mirror=mirror.url, retries=0)
    part = dest / (BIG + ".part")
    assert part.stat().st_size == cut
    assert not (dest / BIG).exists()

    (res,) = download(dest, [BIG], mirror=mirror.url)
    assert res.status == "resumed"
    assert res.bytes_fetched == size - cut
    assert mirror.requests[-1] == (mirror.path_of(BIG), f"bytes={cut}-")
    assert sha256_file(dest / BIG) == get_file(BIG).sha256
    assert not part.exists()


def test_retry_resumes_within_one_call(mirror: _Server, tmp_path: Path):
    mirror.cut[mirror.path_of(BIG)] = 300_000
    (res,) = download(tmp_path, [BIG], mirror=mirror.url, backoff=0.01)
    assert res.status == "resumed"
    assert res.bytes_fetched == get_file(BIG).size
    assert [r for _, r in mirror.requests] == [None, "bytes=300000-"]


def test_server_without_range_support_restarts(mirror: _Server, tmp_path: Path):
    mirror.honor_range = False
    part = tmp_path / (BIG + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 5000)
    (res,) = download(tmp_path, [BIG], mirror=mirror.url)
    assert res.status == "downloaded"
    assert sha256_file(tmp_path / BIG) == get_file(BIG).sha256


def test_corrupt_upstream_file_leaves_nothing(mirror: _Server, tmp_path: Path):
    served = mirror.root / mirror.path_of(YAML).lstrip("/")  # type: ignore[attr-defined]
    data = bytearray(served.read_bytes())
    data[100] ^= 0xFF
    served.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        download(tmp_path, [YAML], mirror=mirror.url)
    msg = str(err.value)
    assert YAML in msg and "SHA-256" in msg and "\n" not in msg
    assert hashlib.sha256(bytes(data)).hexdigest() in msg
    assert not (tmp_path / YAML).exists()
    assert not (tmp_path / (YAML + ".part")).exists()


def test_altered_local_copy_is_replaced(mirror: _Server, tmp_path: Path):
    (tmp_path / YAML).parent.mkdir(parents=True)
    (tmp_path / YAML).write_text("not the table")
    (res,) = download(tmp_path, [YAML], mirror=mirror.url)
    assert res.status == "downloaded"
    assert sha256_file(tmp_path / YAML) == get_file(YAML).sha256


def test_missing_upstream_file(mirror: _Server, tmp_path: Path):
    with pytest.raises(DataError, match="HTTP 404"):
        download(tmp_path, ["ofa/acc_predictor.pth"], mirror=mirror.url)
    assert not (tmp_path / "ofa" / "acc_predictor.pth").exists()


def test_unknown_group_is_named():
    with pytest.raises(UnknownNameError, match="help-nasbench201"):
        download(files=["help-nb"])


def test_resolve_data_dir(tmp_path: Path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="FLEETNAS_DATA_DIR") as err:
        resolve_data_dir(missing)
    assert str(missing) in str(err.value)
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match=r"has no nats/nats_bench\.csv"):
        resolve_data_dir(tmp_path / "d", need=["nats/nats_bench.csv"])
    monkeypatch.setenv("FLEETNAS_DATA_DIR", str(tmp_path / "d"))
    assert resolve_data_dir() == tmp_path / "d"
