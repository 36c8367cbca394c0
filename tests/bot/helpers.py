"""Shared pieces of the bot tests: a running Bot on an ephemeral port, images, SSE reading."""

from __future__ import annotations

import io
import json
from contextlib import asynccontextmanager

import aiohttp


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def big_photo() -> bytes:
    """600x400, larger than a preview may be; a gradient so the PNG stays small."""
    from PIL import Image

    return png_bytes(Image.linear_gradient("L").resize((600, 400)).convert("RGB"))


def bot_settings(settings, **changes):
    """The conftest settings (tmp home, real weights, CPU) on an ephemeral local port."""
    base = {"http_host": "127.0.0.1", "http_port": 0, "shutdown_grace_s": 5.0}
    return settings.model_copy(update={**base, **changes})


@asynccontextmanager
async def running_bot(settings, frontends=None):
    """A started ``Bot`` (with ``frontends``, else the installed ones) and an HTTP session
    pointed at it; stopped cleanly afterwards."""
    from stylebot.process import Bot

    bot = Bot(settings, frontends=frontends)
    await bot.start()
    try:
        async with aiohttp.ClientSession(base_url=bot.url) as http:
            yield bot, http
    finally:
        await bot.stop(grace_s=0)


def form(command: str, **files) -> aiohttp.FormData:
    """A multipart form like the page sends: the command text and named image files."""
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("command", command)
    for field, items in files.items():
        for i, item in enumerate(items if isinstance(items, list) else [items]):
            data.add_field(field, item, filename=f"{field}{i}.png", content_type="image/png")
    return data


async def sse_events(http: aiohttp.ClientSession, path: str) -> list[dict]:
    """Every server-sent event of a job's stream, until the server ends it."""
    events = []
    async with http.get(path) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for raw in response.content:
            line = raw.decode().strip()
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events
