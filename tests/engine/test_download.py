"""Downloads offline: one short probe, no retries, one line, under 3 s."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from engine.catalogue import WeightFile
from engine.download import Unreachable, check_reachable
from engine.errors import WeightsMissing
from engine.weights import WeightStore

BOUND_S = 3.0  # the bound for a missing-weights failure with no network


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("url", [f"http://127.0.0.1:{closed_port()}/w.bin",
                                 "https://stylebot-no-such-host.invalid/w.bin"])
def test_an_unreachable_server_fails_at_once_in_one_line(url, tmp_path, caplog):
    entry = WeightFile("w", "w.bin", ("hub",), "MIT", url=url)
    store = WeightStore([entry], cache_dir=tmp_path / "cache", allow_downloads=True)
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(WeightsMissing) as info:
        store.path("w")
    assert time.monotonic() - started < BOUND_S
    message = str(info.value)
    assert "\n" not in message and "cannot be reached" in message
    assert "stylebot weights fetch hub" in message
    loud = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(loud) == 1 and loud[0].exc_info is None  # one line in the log...
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)  # ...detail at -v


def test_a_failed_probe_is_believed_for_a_while():
    port = closed_port()
    url = f"http://127.0.0.1:{port}/w.bin"
    with pytest.raises(Unreachable, match="connection refused"):
        check_reachable(url)
    with socket.socket() as server:  # the server comes up: the next probes still fail fast
        server.bind(("127.0.0.1", port))
        server.listen()
        with pytest.raises(Unreachable):
            check_reachable(url)


def test_the_probe_goes_to_the_proxy_and_names_it(monkeypatch):
    port = closed_port()
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(Unreachable, match=f"the proxy 127.0.0.1:{port} for example.org"):
        check_reachable("https://example.org/w.bin")


def test_a_server_that_answers_passes_the_probe():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"http://127.0.0.1:{server.getsockname()[1]}/w.bin")
