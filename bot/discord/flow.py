"""Following a job for an interaction, from the deferral to the result and its buttons.

Every path that starts a job (slash commands, the message command's preset menu, the
Re-roll/Stronger/Weaker buttons) goes through ``InteractionFlow.start``; every interaction runs
under ``guard``, so one failure is reported to that one user and logged with the job id
(or the interaction's reference) they see, and never disturbs anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

import discord
from discord import app_commands

from engine.errors import UserError
from engine.events import Cancelled, Done, Failed, Progress, Queued, Started
from engine.methods import get_method
from engine.request import StyleRequest

from stylebot.clips import is_content_type
from stylebot.fitting import fit_clip
from stylebot import refine
from stylebot.previews import PREVIEW_INTERVAL_S, preview_jpeg
from stylebot.results import changed_options, format_options, read_settings, reuse_command

from . import render
from .inputs import check_attachment, download, place_of, requester_of
from .reply import Reply
from .ui import SavePresetModal, picker_view, result_view

if TYPE_CHECKING:
    from engine.queue import JobHandle
    from stylebot.settings import Settings
    from stylebot.service import StyleService

log = logging.getLogger(__name__)

Submit = Callable[[], Awaitable["JobHandle"]]


class InteractionFlow:
    """Submits jobs for Discord users and follows them to a delivered result."""

    def __init__(self, service: "StyleService", settings: "Settings", *, edit_interval_s: float,
                 token_margin_s: float, preview_interval_s: float = PREVIEW_INTERVAL_S) -> None:
        self.service = service
        self.settings = settings
        self.edit_interval_s = edit_interval_s
        self.preview_interval_s = preview_interval_s
        self.token_margin_s = token_margin_s
        self._picks: OrderedDict[int, discord.Attachment] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self.failures = 0

    # -- guarding every interaction --------------------------------------------------------

    @contextlib.asynccontextmanager
    async def guard(self, interaction: discord.Interaction) -> AsyncIterator[None]:
        """Turn a ``UserError`` into an ephemeral answer and anything else into a logged bug."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - every failure is answered and logged
            await self.report(interaction, exc)

    async def report(self, interaction: discord.Interaction, error: BaseException) -> None:
        if isinstance(error, app_commands.CommandInvokeError):
            error = error.original  # what the command itself raised
        if isinstance(error, (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)):
            error = UserError("This command has changed since Discord last heard of it; ask the "
                              "bot's operator to run `stylebot discord sync`.")
        if isinstance(error, UserError):
            text = render.refused(error.message)
        else:
            self.failures += 1
            ref = ref_of(interaction)
            log.error("discord interaction %s (ref %s) by user %s failed", _what(interaction), ref,
                      interaction.user.id if interaction.user else "?",
                      exc_info=(type(error), error, error.__traceback__))
            text = render.bug(ref, what="ref")
        await answer(interaction, text)

    # -- starting jobs ---------------------------------------------------------------------

    def check(self, attachment: discord.Attachment | None, what: str, *, clips: bool = False) -> None:
        """``clips``: the content, which may also be an animation or a short video."""
        if attachment is not None:
            check_attachment(attachment, what=what, max_bytes=self.settings.max_upload_bytes,
                             clips=clips)

    async def fetch(self, attachment: discord.Attachment | None, what: str):
        return None if attachment is None else await download(attachment, what=what)

    async def start(self, interaction: discord.Interaction, submit: Submit) -> None:
        """Defer at once, then submit (downloads included) and follow the job in the background.

        Cheap checks belong before this call (they answer without deferring); ``submit``
        does the slow part (downloads, the service's own checks) after the deferral.
        """
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = Reply(interaction, ref_of(interaction), interval_s=self.edit_interval_s,
                      margin_s=self.token_margin_s, preview_interval_s=self.preview_interval_s)
        try:
            handle = await submit()
        except UserError as exc:
            await reply.finish(render.refused(exc.message))
            return
        reply.job_ref = handle.id
        log.info("job %s (%s) queued for discord user %s", handle.id, handle.method,
                 interaction.user.id)
        task = asyncio.create_task(self._follow(handle, reply), name=f"discord-job-{handle.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, handle: "JobHandle", reply: Reply) -> None:
        job_id, method = handle.id, handle.method
        watch = asyncio.create_task(reply.watch_expiry(), name=f"discord-expiry-{job_id}")
        try:
            async for event in handle.events():
                if isinstance(event, Queued):
                    await reply.status(render.queued(job_id, event.position))
                elif isinstance(event, Started):
                    await reply.status(render.started(job_id, method, event.device))
                elif isinstance(event, Progress):
                    preview = None
                    if event.preview is not None and reply.wants_preview():
                        preview = await preview_jpeg(event.preview)
                    await reply.status(render.progress(job_id, method, event.fraction, event.stage),
                                       preview)
                elif isinstance(event, Done):
                    await self._deliver(handle, event, reply)
                elif isinstance(event, Failed):
                    await reply.finish(("❌ " if event.internal else "⚠️ ") + event.message)
                elif isinstance(event, Cancelled):
                    await reply.finish(render.cancelled(job_id, event.reason))
        except Exception:  # noqa: BLE001 - one job's delivery must never affect another
            self.failures += 1
            log.exception("discord: delivering job %s to user %s failed", job_id, reply.user.id)
            with contextlib.suppress(Exception):
                await reply.finish(render.bug(job_id))
        finally:
            watch.cancel()

    async def _result(self, handle: "JobHandle", event: Done, reply: Reply):
        """(file bytes, filename, embed, view, what fitting did) of a finished job's result
        message; ``UserError`` when a clip cannot fit the upload limit at all."""
        stem, fitted = f"stylebot-{handle.id}", None
        if event.clip is not None:
            fitted = await asyncio.to_thread(fit_clip, event.clip, reply.upload_limit, "Discord",
                                             event.meta)
            data, filename, note = fitted.data, fitted.filename(stem), ""  # the embed says fitted.note
        else:
            data, filename, note = await asyncio.to_thread(render.encode_for_upload, event.image,
                                                           event.meta, reply.upload_limit, stem)
        shown = changed_options(get_method(event.meta.method).options, event.meta.options)
        embed = render.result_embed(handle.id, event.meta, shown, filename, prompt=handle.prompt,
                                    requester=reply.user.display_name, note=note, clip=fitted)
        view = result_view(handle.id, reply.user.id, self.service.result_actions(handle.id))
        return data, filename, embed, view, (fitted.note if fitted is not None else note)

    async def _deliver(self, handle: "JobHandle", event: Done, reply: Reply) -> None:
        try:
            data, filename, embed, view, said = await self._result(handle, event, reply)
        except UserError as exc:  # a clip: not even the least fps, size and colours fit
            await reply.finish(render.refused(exc.message))
            return
        refinement = self.service.refinement(handle.id)
        message = await reply.deliver(data, filename, embed, view, seconds=event.meta.seconds,
                                      ephemeral=not self.service.result_is_public(handle.id),
                                      content=refine.refining_text(None) if refinement else None)
        log.info("job %s delivered to discord user %s (%d bytes%s)", handle.id, reply.user.id,
                 len(data), f", {said}" if said else "")
        if refinement is not None:
            await self._refine(handle, refinement, message, reply)

    async def _refine(self, draft: "JobHandle", refinement: refine.Refinement,
                      message: discord.Message, reply: Reply) -> None:
        """quality=refine: edit the draft's message with the refinement's progress, then with
        its result; when it is stopped or fails, the draft stays, with its own buttons."""
        async def show(status: str) -> None:
            nonlocal message
            message = await reply.edit_result(message, content=status)

        outcome = await refinement.follow(show, self.edit_interval_s)
        if isinstance(outcome, str):  # the draft stays, with its own buttons
            view = result_view(draft.id, reply.user.id, self.service.result_actions(draft.id))
            await reply.edit_result(message, content=outcome, view=view)
            return
        job, final = outcome
        data, filename, embed, view, _ = await self._result(job, final, reply)
        await reply.edit_result(message, content="", upload=(data, filename), embed=embed, view=view)
        log.info("job %s: refined result replaced draft %s for discord user %s", job.id, draft.id,
                 reply.user.id)

    def track(self, task: asyncio.Task) -> None:
        """Keep following ``task`` (a training's messages) as jobs are, until it ends."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until every job being followed has been delivered (shutdown and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def following(self) -> int:
        return len(self._tasks)

    # -- buttons under results -------------------------------------------------------------

    async def on_button(self, interaction: discord.Interaction, action: str, job_id: str,
                        owner_id: int | None) -> None:
        if action == "delete":
            if interaction.user.id != owner_id:
                raise UserError("Only the person who asked for this result can delete it.")
            await interaction.response.defer()
            await interaction.message.delete()
            return
        requester = requester_of(interaction.user)
        if action == "info":
            info = await self.service.result_info(job_id, requester)
            await interaction.response.send_message(render.info_text(info), ephemeral=True)
            return
        if action == refine.STOP:
            await self.service.stop_refining(job_id, requester)
            await interaction.response.send_message("⏹️ Stopping the refinement; the draft stays.",
                                                    ephemeral=True)
            return
        await self.service.check_click(job_id, action, requester)  # answered at once, without a deferral
        if action == "save":
            await interaction.response.send_modal(SavePresetModal(job_id))
            return
        await self.start(interaction, lambda: self.service.rerun(job_id, action, requester))

    async def save_from_result(self, interaction: discord.Interaction, job_id: str, name: str) -> None:
        record = await self.service.save_result(job_id, requester_of(interaction.user), name)
        await interaction.response.send_message(
            f"💾 Saved preset **{record.name}** ({record.method}, {format_options(record.options)}, "
            f"{len(record.styles)} style image(s)). Use it with /preset use name:{record.name}.",
            ephemeral=True)

    # -- the message command's preset menu -------------------------------------------------

    async def offer_presets(self, interaction: discord.Interaction, message: discord.Message) -> None:
        images = [a for a in message.attachments if is_content_type(a.content_type)]
        if not images:
            raise UserError("That message has no image or clip attached; use the command on a "
                            "message with an uploaded image, animation or short video.")
        self.check(images[0], "image", clips=True)
        presets = await self.service.list_presets(requester_of(interaction.user))
        if not presets:
            raise UserError("You have no presets yet; save one with /preset save.")
        key = interaction.id
        self._picks[key] = images[0]
        while len(self._picks) > 500:
            self._picks.popitem(last=False)
        more = f" (showing 25 of {len(presets)})" if len(presets) > 25 else ""
        await interaction.response.send_message(
            f"Restyle **{images[0].filename}** with which of your presets?{more}",
            view=picker_view(key, _recent_first(presets)), ephemeral=True)

    async def show_settings(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps → Stylebot info: the settings inside the message's image, privately."""
        images = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
        if not images:
            raise UserError("That message has no image attached; use Stylebot info on a message "
                            "with a Stylebot result.")
        for attachment in images:
            self.check(attachment, "image")
        await interaction.response.defer(ephemeral=True, thinking=True)
        for attachment in images:
            upload = await download(attachment, what="image")
            settings = await asyncio.to_thread(read_settings, upload.data)
            if settings is not None:
                await interaction.edit_original_response(
                    content=render.settings_text(settings, reuse_command(settings)))
                return
        raise UserError("That image carries no Stylebot settings: only results Stylebot posted "
                        "(as PNG, or JPEG when shrunk to fit) do.")

    async def on_pick(self, interaction: discord.Interaction, key: int, preset: str) -> None:
        attachment = self._picks.pop(key, None)
        if attachment is None:
            raise UserError("This menu has expired; use “Stylize with preset…” on the message again.")
        requester = requester_of(interaction.user)

        async def submit() -> "JobHandle":
            content = await download(attachment, what="image")
            return await self.service.submit(StyleRequest(method=None, content=content,
                                                          requester=requester, preset=preset,
                                                          place=place_of(interaction)))

        await self.start(interaction, submit)


def _recent_first(presets: list) -> list:
    used = sorted((p for p in presets if p.last_used_at), key=lambda p: p.last_used_at, reverse=True)
    return used + [p for p in presets if not p.last_used_at]


def ref_of(interaction: discord.Interaction) -> str:
    """A short reference to quote in messages and logs before a job id exists."""
    return f"{interaction.id:x}"[-8:]


def _what(interaction: discord.Interaction) -> str:
    command = interaction.command
    if command is not None:
        return f"/{command.qualified_name}"
    data = interaction.data or {}
    return str(data.get("custom_id") or data.get("name") or interaction.type)


async def answer(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral answer, however far the interaction has got; never raises."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
        elif interaction.response.type == discord.InteractionResponseType.deferred_channel_message:
            await interaction.edit_original_response(content=text)
        else:
            await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not answer interaction %s: %s", interaction.id, exc)
