"""The playground's finished results, encoded once and kept for the page.

A still is a PNG with its settings inside; a clip goes back as its own kind, fitted to the
playground's own limit (``playground_result_mb``) by the rule every front end uses
(``stylebot.fitting``), since results are kept in memory for the page's <img>/<video>,
its recent strip and the download link.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from engine.events import Done
from stylebot.fitting import FittedClip, fit_clip

RESULT_CACHE = 24  # encoded results kept


@dataclass(frozen=True)
class Result:
    """A result as the page gets it."""

    data: bytes
    mime: str
    ext: str
    clip: FittedClip | None = None


def encode(final: Done, limit: int) -> Result:
    """``final``'s result; ``UserError`` when a clip cannot fit ``limit`` at all."""
    if final.clip is not None:
        fitted = fit_clip(final.clip, limit, "the playground", final.meta)
        return Result(fitted.data, fitted.mime, fitted.kind, fitted)
    from engine.images import encode_result

    return Result(encode_result(final.image, final.meta).data, "image/png", "png")


class Results:
    """The last ``RESULT_CACHE`` results by job id, encoded off the event loop on first use."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept: OrderedDict[str, Result] = OrderedDict()

    async def of(self, final: Done) -> Result:
        result = self._kept.get(final.job_id)
        if result is None:
            result = await asyncio.to_thread(encode, final, self.limit)
            self._kept[final.job_id] = result
            while len(self._kept) > RESULT_CACHE:
                self._kept.popitem(last=False)
        self._kept.move_to_end(final.job_id)
        return result
