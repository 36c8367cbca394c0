"""The per-user chat rate limit, applied by the service to every chat platform alike."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from engine.errors import UserError
from engine.request import Requester


class RateLimiter:
    """At most ``count`` job submissions per user in any ``per_s`` seconds."""

    def __init__(self, count: int, per_s: float) -> None:
        self.count = count
        self.per_s = per_s
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def hit(self, requester: Requester) -> None:
        """Count one submission, or refuse it with how long to wait."""
        now = time.monotonic()
        hits = self._hits[requester.key]
        while hits and now - hits[0] >= self.per_s:
            hits.popleft()
        if len(hits) >= self.count:
            wait = self.per_s - (now - hits[0])
            raise UserError(f"Slow down: you can start {self.count} jobs every "
                            f"{self.per_s:g} s; try again in {max(1, round(wait))} s.")
        hits.append(now)
