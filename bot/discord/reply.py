"""Where one job's messages go, and how often.

A command's deferred (ephemeral) response carries the queue position and a progress bar,
edited at most every few seconds so a long job does not hammer Discord's rate limits. The
result is a public follow-up. Interaction tokens die 15 minutes after the command, so a
job that outlives its token (gatys, nada, a long queue) is delivered as a channel message
that mentions the user instead, and so is anything sent after Discord says the token is gone.

Long jobs' previews ride on the progress edits as a small JPEG attachment, at most one every
``preview_interval_s`` (``stylebot.previews``); the final edit removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import logging
import time

import discord

from stylebot.previews import PREVIEW_FILENAME, PREVIEW_INTERVAL_S

from . import render

log = logging.getLogger(__name__)

TOKEN_LIFETIME = dt.timedelta(minutes=15)
INVALID_WEBHOOK_TOKEN = 50027
UNKNOWN_WEBHOOK = 10015


def token_gone(exc: discord.HTTPException) -> bool:
    """Whether Discord refused because the interaction's token expired or is unknown."""
    return exc.status == 401 or getattr(exc, "code", 0) in (INVALID_WEBHOOK_TOKEN, UNKNOWN_WEBHOOK)


class Reply:
    """The messages about one job, sent through the interaction while its token lives."""

    def __init__(self, interaction: discord.Interaction, job_ref: str, *, interval_s: float,
                 margin_s: float, preview_interval_s: float = PREVIEW_INTERVAL_S) -> None:
        self.interaction = interaction
        self.user = interaction.user
        self.job_ref = job_ref
        self.upload_limit = interaction.filesize_limit
        self._interval = interval_s
        self._expires = interaction.created_at + TOKEN_LIFETIME
        self._deadline = self._expires - dt.timedelta(seconds=margin_s)
        self._lock = asyncio.Lock()
        self._latest: str | None = None
        self._shown: str | None = None
        self._last_edit = float("-inf")
        self._flush: asyncio.Task | None = None  # a delayed edit, while it is still waiting
        self._closed = False  # the final word was said; late progress must not overwrite it
        self.in_channel = False
        self._preview_interval = preview_interval_s
        self._preview: bytes | None = None  # a JPEG waiting for the next edit
        self._last_preview = float("-inf")  # when the last preview edit went out
        self._preview_shown = False  # the response carries a preview attachment now

    # -- progress, throttled ---------------------------------------------------------------

    def wants_preview(self) -> bool:
        """Whether a preview handed over now would go out: none waiting, the last one long enough ago.

        Asked before encoding, so previews that would be dropped cost nothing.
        """
        return (not self.in_channel and not self._closed and self._preview is None
                and time.monotonic() - self._last_preview >= self._preview_interval)

    async def status(self, text: str, preview: bytes | None = None) -> None:
        """Show ``text`` (and ``preview``, a JPEG) now, or within the edit interval if the last
        edit was recent."""
        self._latest = text
        if self.in_channel:
            return
        if preview is not None:
            self._preview = preview
        wait = self._last_edit + self._interval - time.monotonic()
        if wait <= 0 and not self._lock.locked():
            await self._show_latest()
        elif self._flush is None:
            self._flush = asyncio.create_task(self._show_later(max(wait, 0.0)))

    async def _show_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._flush = None  # from here on it is an edit in progress, not to be cancelled
        async with self._lock:
            # Another edit may have landed while this one waited for the lock: keep the interval.
            wait = self._last_edit + self._interval - time.monotonic()
            if wait > 0:
                if not self._closed and self._flush is None:
                    self._flush = asyncio.create_task(self._show_later(wait))
                return
            await self._show_latest_locked()

    async def _show_latest(self) -> None:
        async with self._lock:
            await self._show_latest_locked()

    async def _show_latest_locked(self) -> None:
        preview = self._preview
        if self._closed or self._latest is None or (self._latest == self._shown and preview is None):
            return
        text = self._latest
        if await self._edit(text, preview=preview):
            self._shown = text
            if preview is not None:
                if self._preview is preview:
                    self._preview = None
                self._last_preview = time.monotonic()

    def _close(self) -> None:
        self._closed = True
        self._preview = None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None

    async def watch_expiry(self) -> None:
        """Near the token's end, say (while it still works) that the result will come in the channel."""
        await asyncio.sleep(max(0.0, (self._deadline - discord.utils.utcnow()).total_seconds()))
        async with self._lock:
            if not self._closed:
                await self._move_to_channel()

    # -- final messages --------------------------------------------------------------------

    async def finish(self, text: str) -> None:
        """The job's last word when there is no image: failed, cancelled or refused."""
        self._close()
        async with self._lock:
            if await self._edit(text):
                return
        await self._to_channel(f"{self.user.mention} {text}")

    async def deliver(self, data: bytes, filename: str, embed: discord.Embed, view: discord.ui.View,
                      *, seconds: float, ephemeral: bool = False,
                      content: str | None = None) -> discord.Message:
        """Post the result: a follow-up while the token lives, else in the channel (publicly), or,
        where the server's settings make results ephemeral, for the asker only (else by DM)."""
        self._close()
        message: discord.Message | None = None
        async with self._lock:
            # Resolve the deferred response first, so the follow-up is a message of its own.
            if await self._edit(render.done(self.job_ref, seconds)):
                try:
                    message = await self.interaction.followup.send(
                        content or "", file=discord.File(io.BytesIO(data), filename), embed=embed,
                        view=view, wait=True, ephemeral=ephemeral)
                except discord.HTTPException as exc:
                    if not token_gone(exc):
                        raise
                    self._token_died(exc)
            if message is not None:
                await self._edit(render.done(self.job_ref, seconds, self._link(message)))
                return message
        return await self._to_channel(f"{self.user.mention} your result is ready."
                                      + (f" {content}" if content else ""),
                                      (data, filename), embed=embed, view=view, dm=ephemeral)

    async def edit_result(self, message: discord.Message, *, content: str | None = None,
                          upload: tuple[bytes, str] | None = None, **fields) -> discord.Message:
        """Edit a delivered result (a refinement replacing its draft): through the interaction
        while its token lives, else as the bot in the channel. A new image that neither can
        place is posted in the channel instead; a progress edit that cannot land is dropped."""
        if content is not None:
            fields["content"] = content
        if upload is not None:
            fields["attachments"] = [discord.File(io.BytesIO(upload[0]), upload[1])]
        if isinstance(message, discord.WebhookMessage) and not self.token_usable():
            message = self.interaction.client.get_partial_messageable(
                message.channel.id, guild_id=self.interaction.guild_id).get_partial_message(message.id)
        try:
            return await message.edit(**fields) or message
        except discord.HTTPException as exc:
            if isinstance(message, discord.WebhookMessage) and token_gone(exc):
                self._token_died(exc)
                return await self.edit_result(message, upload=upload, **fields)
            if upload is None:
                log.info("job %s: result message %s not edited: %s", self.job_ref, message.id, exc)
                return message
            log.info("job %s: result message %s not editable (%s); posting anew", self.job_ref,
                     message.id, exc)
            fields.pop("attachments", None)
            fields.pop("content", None)
            return await self._to_channel(f"{self.user.mention} your refined result is ready.",
                                          upload, **fields)

    # -- plumbing --------------------------------------------------------------------------

    def _link(self, message: discord.Message) -> str:
        # Follow-up payloads carry no guild, so discord.py's jump_url would point at DMs.
        guild = self.interaction.guild_id or "@me"
        return f"https://discord.com/channels/{guild}/{message.channel.id}/{message.id}"

    def token_usable(self) -> bool:
        return not self.in_channel and discord.utils.utcnow() < self._deadline

    async def _edit(self, text: str, *, preview: bytes | None = None) -> bool:
        """Edit the response; False (and channel mode from now on) once the token is unusable.

        With ``preview`` the edit replaces the attachment with it; a final edit (after
        ``_close``) removes the preview shown, as Discord drops attachments left out of
        ``attachments``.
        """
        if not self.token_usable():
            await self._move_to_channel()
            return False
        fields = {}
        if preview is not None:
            fields["attachments"] = [discord.File(io.BytesIO(preview), PREVIEW_FILENAME,
                                                  description="preview of the image so far")]
        elif self._closed and self._preview_shown:
            fields["attachments"] = []
        try:
            await self.interaction.edit_original_response(content=text, **fields)
        except discord.HTTPException as exc:
            if not token_gone(exc):
                raise
            self._token_died(exc)
            return False
        self._last_edit = time.monotonic()
        if "attachments" in fields:
            self._preview_shown = preview is not None
        return True

    def _token_died(self, exc: discord.HTTPException) -> None:
        log.info("job %s: interaction token refused (%s %s); using the channel", self.job_ref,
                 exc.status, getattr(exc, "code", ""))
        self.in_channel = True

    async def _move_to_channel(self) -> None:
        """Say once, while the token still works, that the rest comes in the channel."""
        if self.in_channel:
            return
        self.in_channel = True
        log.info("job %s: interaction token about to expire; delivering in the channel", self.job_ref)
        if discord.utils.utcnow() < self._expires:
            fields = {"attachments": []} if self._preview_shown else {}
            with contextlib.suppress(discord.HTTPException):
                await self.interaction.edit_original_response(
                    content=render.moved_to_channel(self.job_ref), **fields)
                self._preview_shown = False

    async def _to_channel(self, content: str, upload: tuple[bytes, str] | None = None, *,
                          dm: bool = False, **fields) -> discord.Message:
        """Send in the command's channel, mentioning only the user; by DM if the bot may not post
        there, or if ``dm`` (an ephemeral result, once the token cannot carry it)."""
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=[self.user])

        def message_fields() -> dict:
            file = {"file": discord.File(io.BytesIO(upload[0]), upload[1])} if upload else {}
            return {"content": content, "allowed_mentions": mentions, **file, **fields}

        channel_id = self.interaction.channel_id
        if channel_id is not None and not dm:
            channel = self.interaction.client.get_partial_messageable(
                channel_id, guild_id=self.interaction.guild_id)
            try:
                return await channel.send(**message_fields())
            except discord.Forbidden:
                log.info("job %s: cannot post in channel %s; sending a DM", self.job_ref, channel_id)
        return await self.user.send(**message_fields())
