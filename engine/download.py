"""Streaming HTTP download with retries, used only by the weights store."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from tenacity import (retry, retry_if_exception, stop_after_attempt, wait_exponential)

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = "stylebot-weights/0.1"


def _is_transient(exc: BaseException) -> bool:
    """Retry network hiccups and 5xx/429, not 404s or DNS failures of an offline machine."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code == 429
    if isinstance(exc, urllib.error.URLError):
        return not isinstance(exc.reason, OSError) or "Name or service" not in str(exc.reason)
    return isinstance(exc, (TimeoutError, ConnectionError))


@retry(retry=retry_if_exception(_is_transient), stop=stop_after_attempt(3),
       wait=wait_exponential(multiplier=1, max=10), reraise=True)
def fetch_url(url: str, dest: Path, *, total: int | None = None,
              progress: Callable[[int, int | None], None] | None = None,
              timeout: float = 30.0) -> None:
    """Write ``url`` to ``dest`` (overwriting), reporting (bytes, total) as it goes."""
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
