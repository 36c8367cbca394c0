"""/train on Discord: start a user's background training, then keep the channel told.

The refusals are the service's (``check_training``), answered privately before the style
image is downloaded. Progress is one channel message edited with the steps done, at most
every few seconds; when the network is ready a second message tells its owner how to use it.
Channel messages do not expire as interaction tokens do, so a long training is fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import discord

from engine.errors import UserError
from stylebot.training_jobs import TrainingFailed, TrainingProgress, TrainingReady, TrainingWaiting

from . import render
from .inputs import requester_of

if TYPE_CHECKING:
    from stylebot.training_jobs import TrainingHandle

    from .flow import InteractionFlow

log = logging.getLogger(__name__)


def progress_text(name: str, user: str, step: int, total: int) -> str:
    return f"🎓 Training style **{name}** for {user}: {step}/{total} steps"


def waiting_text(name: str, user: str, ahead: int) -> str:
    return (f"⏳ Training style **{name}** for {user}: waiting for {ahead} other training"
            f"{'s' if ahead != 1 else ''} to finish")


def ready_text(mention: str, name: str) -> str:
    return (f"✅ {mention}, your style **{name}** is ready: use it with "
            f"`/stylize method:fast model:{name}` (only you can).")


async def start_training(flow: "InteractionFlow", interaction: discord.Interaction,
                         style: discord.Attachment, name: str) -> None:
    """Refuse at once what needs no download; then fetch the style and start the training."""
    requester = requester_of(interaction.user)
    flow.check(style, "style image")
    flow.service.check_training(requester, name)
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        upload = await flow.fetch(style, "style image")
        handle = await flow.service.train(requester, upload, name)
    except UserError as exc:
        await interaction.edit_original_response(content=render.refused(exc.message))
        return
    channel = interaction.client.get_partial_messageable(interaction.channel_id,
                                                         guild_id=interaction.guild_id)
    await interaction.edit_original_response(
        content=f"🎓 Training **{handle.name}** started ({handle.total} steps, between other "
                "people's jobs); its progress is in this channel. `/cancel` stops it.")
    flow.track(asyncio.create_task(_follow(handle, channel, interaction.user, flow.edit_interval_s),
                                   name=f"discord-train-{handle.id}"))


async def _follow(handle: "TrainingHandle", channel: discord.abc.Messageable, user: discord.abc.User,
                  interval_s: float) -> None:
    """One progress message, edited; the ready message; a failure in the progress message."""
    nobody = discord.AllowedMentions.none()
    who = user.display_name
    message = None
    try:
        message = await channel.send(progress_text(handle.name, who, 0, handle.total),
                                     allowed_mentions=nobody)
        shown = time.monotonic()
        async for event in handle.events():
            if isinstance(event, TrainingWaiting):
                await message.edit(content=waiting_text(handle.name, who, event.ahead))
            elif isinstance(event, TrainingProgress) and time.monotonic() - shown >= interval_s:
                shown = time.monotonic()
                try:
                    await message.edit(content=progress_text(handle.name, who, event.step,
                                                             event.total))
                except discord.HTTPException as exc:  # a missed edit is not worth stopping for
                    log.info("training %s: progress edit failed: %s", handle.id, exc)
            elif isinstance(event, TrainingReady):
                await message.edit(content=progress_text(handle.name, who, event.steps, event.steps)
                                   + " ✅")
                await channel.send(ready_text(user.mention, event.name),
                                   allowed_mentions=discord.AllowedMentions(users=[user]))
            elif isinstance(event, TrainingFailed):
                await message.edit(content=("❌ " if event.internal else "⚠️ ")
                                   + f"Training **{handle.name}** stopped: {event.message}")
    except Exception:  # noqa: BLE001 - one training's messages must never affect another
        log.exception("discord: reporting training %s to user %s failed", handle.id, user.id)
        if message is not None:
            with contextlib.suppress(Exception):
                await message.edit(content=render.bug(handle.id, what="training"))
