"""The interaction's reply: progress edits keep their interval even when edits are slow."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import discord

from bot.discord.reply import Reply


class SlowInteraction:
    """Just what ``Reply`` uses of an interaction; each edit takes ``edit_s`` and is timed."""

    def __init__(self, edit_s: float) -> None:
        self.edit_s = edit_s
        self.user = SimpleNamespace(mention="<@1>")
        self.filesize_limit = 10 * 1024 * 1024
        self.created_at = discord.utils.utcnow()
        self.edits: list[tuple[float, str]] = []

    async def edit_original_response(self, *, content: str) -> None:
        self.edits.append((time.monotonic(), content))
        await asyncio.sleep(self.edit_s)


async def test_a_progress_update_during_a_slow_delayed_edit_waits_a_full_interval():
    interaction = SlowInteraction(edit_s=0.2)
    reply = Reply(interaction, "job1", interval_s=0.5, margin_s=60)
    await reply.status("10%")  # edits at once, done at 0.2 s
    await asyncio.sleep(0.05)
    await reply.status("20%")  # waits for the interval: edits at 0.7 s, done at 0.9 s
    await asyncio.sleep(0.5)
    await reply.status("30%")  # arrives during that edit: must not follow it at once
    await asyncio.sleep(1.2)
    await reply.finish("done")
    texts = [text for _, text in interaction.edits]
    assert texts == ["10%", "20%", "30%", "done"]
    starts = [at for at, _ in interaction.edits[:3]]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.45, gaps
