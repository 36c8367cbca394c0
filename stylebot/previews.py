"""Live previews in chat progress messages: how often, and the one way they are encoded.

Methods that optimise for a while (gatys per iteration, and any method that passes an
image to ``RunContext.progress``) report intermediate images. Chat platforms limit how
often a message may be edited (Discord about every 2 s per message, Slack's chat.update
about once a second), and a preview costs more than a text edit: an upload on Discord, and
on Slack an upload, the edit and the deletion of the preview it replaces. So adapters show
at most one preview every ``PREVIEW_INTERVAL_S``, riding on their ordinary throttled text
edits, and the final message (the result, or the failure) replaces it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine.images import encode_preview

if TYPE_CHECKING:
    from PIL import Image

# Three Discord edit intervals, four of Slack's: on Slack each preview is ~5 API calls
# (upload URL, upload, complete, chat.update, files.delete of the last one), so one job
# stays near 10 files.delete calls a minute, well inside that method's Tier 3 (50+/min),
# even with a few jobs batched together.
PREVIEW_INTERVAL_S = 6.0
PREVIEW_FILENAME = "preview.jpg"


async def preview_jpeg(image: "Image.Image") -> bytes:
    """The preview as a small JPEG (``engine.images.encode_preview``), off the event loop."""
    return await asyncio.to_thread(encode_preview, image)
