"""Streaming HTTP download with retries, used only by the weights store.

Before any download one short TCP probe checks that the server (or the proxy in between)
answers at all, so an offline machine fails in well under a second with one line instead
of retrying with backoff (``check_reachable``, also used for the Hugging Face Hub).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from tenacity import (retry, retry_if_exception, stop_after_attempt, wait_exponential)

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = "stylebot-weights/0.1"
CONNECT_TIMEOUT_S = 1.5  # a server that answers at all accepts a connection well within this
UNREACHABLE_TTL_S = 10.0  # a failed probe is believed this long: one probe per burst of fetches

_unreachable: dict[tuple[str, int], tuple[float, str]] = {}
_unreachable_lock = threading.Lock()


class Unreachable(OSError):
    """The server behind a URL (or its proxy) accepts no connection: offline, DNS, refused."""


def check_reachable(url: str, *, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise ``Unreachable`` with a one-line reason unless ``url``'s server accepts a connection.

    The probe goes to the proxy when one is configured for the URL (the environment's, as
    urllib and the Hub client read it). A failure is remembered for ``UNREACHABLE_TTL_S``.
    """
    host, port, what = _first_hop(url)
    key = (host, port)
    now = time.monotonic()
    with _unreachable_lock:
        known = _unreachable.get(key)
        if known is not None and now - known[0] < UNREACHABLE_TTL_S:
            raise Unreachable(known[1])
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = f"{what} cannot be reached: {_why(exc, timeout)}"
        with _unreachable_lock:
            _unreachable[key] = (now, reason)
        raise Unreachable(reason) from None
    with _unreachable_lock:
        _unreachable.pop(key, None)


def _first_hop(url: str) -> tuple[str, int, str]:
    """(host, port, words for messages) of the first server a request to ``url`` goes to."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        proxy_port = via.port or (443 if via.scheme == "https" else 80)
        return via.hostname or "", proxy_port, f"the proxy {via.hostname}:{proxy_port} for {host}"
    return host, port, f"{host}:{port}" if parts.port else host


def _why(exc: OSError, timeout: float) -> str:
    if isinstance(exc, socket.gaierror):
        return "its name does not resolve; no network?"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return exc.strerror or str(exc) or type(exc).__name__


def _is_transient(exc: BaseException) -> bool:
    """Retry network hiccups and 5xx/429, not 404s or DNS failures of an offline machine."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code == 429
    if isinstance(exc, urllib.error.URLError):
        return not isinstance(exc.reason, OSError) or "Name or service" not in str(exc.reason)
    return isinstance(exc, (TimeoutError, ConnectionError))


def fetch_url(url: str, dest: Path, *, total: int | None = None,
              progress: Callable[[int, int | None], None] | None = None,
              timeout: float = 30.0) -> None:
    """Write ``url`` to ``dest`` (overwriting), reporting (bytes, total) as it goes.

    ``Unreachable`` at once when the server does not answer; retries only once it has.
    """
    check_reachable(url)
    _fetch(url, dest, total=total, progress=progress, timeout=timeout)


@retry(retry=retry_if_exception(_is_transient), stop=stop_after_attempt(3),
       wait=wait_exponential(multiplier=1, max=10), reraise=True)
def _fetch(url: str, dest: Path, *, total: int | None,
           progress: Callable[[int, int | None], None] | None, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        length = response.headers.get("Content-Length")
        size = int(length) if length and length.isdigit() else total
        done = 0
        while block := response.read(CHUNK):
            out.write(block)
            done += len(block)
            if progress is not None:
                progress(done, size)
