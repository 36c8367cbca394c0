"""A job's life in a Slack conversation: queue position, progress, result and its buttons.

Every way of starting a job (slash commands, modals, the shortcut, mentions, buttons) ends
in ``JobFlow.submit``. One message per job shows the queue position and then progress
(edited with chat.update, at most every ``edit_interval_s``); the result is uploaded to the
same channel or thread with a Block Kit summary and buttons under it.

Previews (``stylebot.previews``) are uploaded privately, shared in no conversation, and shown
in the progress message through an image block that names the file (``slack_file``); each
new one replaces the last, which is then deleted, and the last is deleted when the job ends.
So the conversation never gets a file message per preview, and no preview outlives its job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from engine.errors import UserError
from engine.events import Cancelled, Done, Failed, Progress, Queued, Started
from engine.images import encode_result
from engine.methods import get_method

from . import render as blocks
from stylebot.fitting import fit_clip
from stylebot import refine
from stylebot.previews import PREVIEW_INTERVAL_S, preview_jpeg
from stylebot.results import changed_options

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from engine.queue import JobHandle
    from engine.request import StyleRequest
    from stylebot.service import StyleService

log = logging.getLogger(__name__)

NOT_IN_CHANNEL = ("not_in_channel", "channel_not_found", "is_archived", "restricted_action")
SHOW_TRIES = 5  # a fresh upload Slack is still processing is refused this often, a second apart


@dataclass(frozen=True)
class Place:
    """Where a request came from and where its answers go."""

    channel: str
    user: str
    thread_ts: str | None = None
    response_url: str | None = None  # slash commands and shortcuts: ephemeral answers anywhere
    user_name: str = ""


class ProgressMessage:
    """The one message that follows a job: posted once, then edited at a limited rate.

    A late, throttled edit can never land after the final text: ``finish`` and ``delete``
    close the message first, under the same lock the delayed edit needs.
    """

    def __init__(self, client: "AsyncWebClient", place: Place, interval_s: float,
                 preview_interval_s: float = PREVIEW_INTERVAL_S) -> None:
        self.client = client
        self.place = place
        self.interval_s = interval_s
        self.preview_interval_s = preview_interval_s
        self._preview: str | None = None  # the newest uploaded preview's file id
        self._shown_preview: str | None = None  # the one the message shows now
        self._last_preview = float("-inf")  # when an edit last showed a new preview
        self._uploading = False
        self.ts: str | None = None
        self.closed = False
        self.edits = 0
        self._last = 0.0
        self._pending: tuple[str, list | None] | None = None
        self._flusher: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def show(self, text: str, blocks_: list | None = None) -> None:
        """Post or edit now if allowed, else keep only the newest text for a later edit."""
        if self.closed:
            return
        wait = self._last + self.interval_s - time.monotonic()
        if self.ts is not None and wait > 0:
            self._pending = (text, blocks_)
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush_later(wait))
            return
        async with self._lock:
            if not self.closed:
                await self._send(text, blocks_)

    async def _flush_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        async with self._lock:
            if self.closed or self._pending is None:
                return
            text, blocks_ = self._pending
            self._pending = None
            try:
                await self._send(text, blocks_)
            except SlackApiError as exc:  # a missed progress edit is not worth failing over
                log.info("progress edit failed: %s", exc.response.get("error"))

    # -- previews --------------------------------------------------------------------------

    def wants_preview(self) -> bool:
        """Whether a preview handed over now would be shown: the message exists, no preview is
        on its way, and the last one was shown ``preview_interval_s`` ago. Asked before encoding."""
        return (self.ts is not None and not self.closed and not self._uploading
                and self._preview == self._shown_preview
                and time.monotonic() - self._last_preview >= self.preview_interval_s)

    async def add_preview(self, jpeg: bytes, job_id: str) -> None:
        """Upload ``jpeg`` privately for the next edit to show; a failed upload is only logged."""
        self._uploading = True
        try:
            response = await self.client.files_upload_v2(
                file=jpeg, filename=f"stylebot-preview-{job_id}.jpg", title=f"preview · job {job_id}")
        except SlackApiError as exc:
            log.info("job %s: preview upload failed: %s", job_id, exc.response.get("error"))
            return
        finally:
            self._uploading = False
        file_id = response["file"]["id"]
        async with self._lock:
            if self.closed:
                await self._delete_file(file_id)
                return
            stale, self._preview = self._preview, file_id
            if stale is not None and stale != self._shown_preview:
                await self._delete_file(stale)

    async def _delete_file(self, file_id: str) -> None:
        try:
            await self.client.files_delete(file=file_id)
        except SlackApiError as exc:
            log.info("could not delete preview %s: %s", file_id, exc.response.get("error"))

    async def _drop_previews(self) -> None:
        """After the last edit: delete the preview files, shown or waiting."""
        for file_id in {self._preview, self._shown_preview} - {None}:
            await self._delete_file(file_id)
        self._preview = self._shown_preview = None

    async def _update(self, text: str, blocks_: list | None) -> None:
        preview = None if self.closed else self._preview
        if preview is None:
            await self.client.chat_update(channel=self.place.channel, ts=self.ts, text=text,
                                          blocks=blocks_ or [])
            return
        try:
            await self.client.chat_update(channel=self.place.channel, ts=self.ts, text=text,
                                          blocks=[*(blocks_ or []), blocks.preview_block(preview)])
        except SlackApiError as exc:
            if exc.response.get("error") != "invalid_blocks":
                raise
            # Slack may need a moment before a fresh upload can be shown: text only this time,
            # the preview waits for the next edit.
            log.info("preview %s not shown yet: %s", preview, exc.response.get("errors"))
            await self.client.chat_update(channel=self.place.channel, ts=self.ts, text=text,
                                          blocks=blocks_ or [])
            preview = None
        shown, self._shown_preview = self._shown_preview, preview
        if preview is not None and preview != shown:
            self._last_preview = time.monotonic()
        if shown is not None and shown != preview:
            await self._delete_file(shown)

    async def _send(self, text: str, blocks_: list | None) -> None:
        if self.ts is None:
            response = await self.client.chat_postMessage(
                channel=self.place.channel, thread_ts=self.place.thread_ts, text=text,
                blocks=blocks_ or [], unfurl_links=False)
            self.ts = response["ts"]
            channel = response.get("channel") or self.place.channel  # a user id becomes a DM id
            self.place = dataclasses.replace(self.place, channel=channel)
        else:
            await self._update(text, blocks_)
            self.edits += 1
        self._last = time.monotonic()

    def _close(self) -> None:
        self.closed = True
        self._pending = None
        if self._flusher is not None:
            self._flusher.cancel()

    async def finish(self, text: str) -> None:
        """The final text, at once, whatever the rate limit."""
        async with self._lock:
            self._close()
            try:
                await self._send(text, None)
            finally:
                await self._drop_previews()

    async def delete(self) -> None:
        async with self._lock:
            self._close()
            if self.ts is not None:
                try:
                    await self.client.chat_delete(channel=self.place.channel, ts=self.ts)
                except SlackApiError as exc:
                    log.info("could not delete progress message: %s", exc.response.get("error"))
            await self._drop_previews()


class JobFlow:
    """Submits jobs for Slack users and follows each one to a delivered result."""

    def __init__(self, service: "StyleService", client: "AsyncWebClient", *,
                 edit_interval_s: float, preview_interval_s: float = PREVIEW_INTERVAL_S,
                 upload_limit: int = 2**30) -> None:
        self.service = service
        self.client = client
        self.upload_limit = upload_limit  # clips over it are fitted (stylebot/fitting.py)
        self.edit_interval_s = edit_interval_s
        self.preview_interval_s = preview_interval_s
        self.tasks: set[asyncio.Task] = set()
        self.failures = 0

    # -- answering one person -------------------------------------------------------------

    async def tell(self, place: Place, text: str) -> None:
        """An ephemeral answer: chat.postEphemeral, else the response_url where there is one."""
        try:
            await self.client.chat_postEphemeral(channel=place.channel, user=place.user, text=text,
                                                 thread_ts=place.thread_ts)
            return
        except SlackApiError as exc:
            if not place.response_url:
                log.warning("could not tell %s in %s: %s", place.user, place.channel,
                            exc.response.get("error"))
                return
        try:
            response = await AsyncWebhookClient(place.response_url).send(
                text=text, response_type="ephemeral", replace_original=False)
            if response.status_code != 200:
                log.warning("response_url refused the answer to %s: %s", place.user, response.status_code)
        except Exception as exc:  # noqa: BLE001 - nowhere left to say it; keep serving others
            log.warning("could not answer %s through response_url: %s", place.user, exc)

    # -- jobs ------------------------------------------------------------------------------

    async def submit(self, place: Place, request: "StyleRequest") -> "JobHandle | None":
        """Queue the request; refusals (options, images, a full queue) are told to the user."""
        return await self.start(place, lambda: self.service.submit(request))

    async def start(self, place: Place, submit: "Callable[[], Awaitable[JobHandle]]") -> "JobHandle | None":
        """Run ``submit`` and follow the job it queues; a refusal is told to the user."""
        try:
            handle = await submit()
        except UserError as exc:
            await self.tell(place, blocks.refused(exc.message))
            return None
        log.info("job %s queued for slack user %s in %s (%s)", handle.id, place.user, place.channel,
                 handle.method)
        task = asyncio.create_task(self.follow(handle, place), name=f"slack-job-{handle.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return handle

    async def follow(self, handle: "JobHandle", place: Place) -> None:
        message = ProgressMessage(self.client, place, self.edit_interval_s, self.preview_interval_s)
        method = handle.method
        user = place.user
        try:
            async for event in handle.events():
                if isinstance(event, Queued):
                    await message.show(*self._cancellable(
                        blocks.queued(event.job_id, method, user, event.position), event.job_id))
                elif isinstance(event, Started):
                    await message.show(*self._cancellable(
                        blocks.started(event.job_id, method, user, event.device), event.job_id))
                elif isinstance(event, Progress):
                    if event.preview is not None and message.wants_preview():
                        await message.add_preview(await preview_jpeg(event.preview), event.job_id)
                    await message.show(*self._cancellable(
                        blocks.progress(event.job_id, method, user, event.fraction, event.stage),
                        event.job_id))
                elif isinstance(event, Done):
                    await self.deliver(handle, event, place, message)
                elif isinstance(event, Failed):
                    if event.internal:
                        self.failures += 1
                    await message.finish(blocks.failed(event.job_id, user, event.message))
                elif isinstance(event, Cancelled):
                    await message.finish(blocks.cancelled(event.job_id, user, event.reason))
        except Exception as exc:  # noqa: BLE001 - one job's delivery must not end the adapter
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            if isinstance(exc, SlackApiError) and message.ts is None and error in NOT_IN_CHANNEL:
                handle.cancel("Stylebot cannot post in this conversation")
                await self.tell(place, blocks.refused(
                    "I cannot post in this conversation; invite me with /invite @Stylebot "
                    "(or use me in a public channel), then try again."))
                return
            self.failures += 1
            log.error("job %s could not be delivered to Slack (%s)", handle.id, error,
                      exc_info=not isinstance(exc, SlackApiError))
            reason = (f"Slack refused my message or upload ({error})." if isinstance(exc, SlackApiError)
                      else "the result could not be posted; it has been logged.")
            text = blocks.failed(handle.id, user, reason)
            try:
                await message.finish(text)
            except Exception:  # noqa: BLE001 - the message itself is what fails
                await self.tell(place, text)

    @staticmethod
    def _cancellable(text: str, job_id: str) -> tuple[str, list]:
        return text, blocks.with_cancel(text, job_id)

    async def deliver(self, handle: "JobHandle", done: Done, place: Place,
                      message: ProgressMessage) -> None:
        """Upload the result where the request came from, summarise it, then drop the progress.

        Where results are private (``/settings results=ephemeral``) they go to the asker's
        direct messages: Slack's ephemeral messages cannot carry a file.
        """
        fitted = None
        if done.clip is not None:
            try:
                fitted = await asyncio.to_thread(fit_clip, done.clip, self.upload_limit, "Slack",
                                                 done.meta)
            except UserError as exc:  # not even the least fps, size and colours fit
                await message.finish(blocks.failed(done.job_id, place.user, exc.message))
                return
            data, filename = fitted.data, fitted.filename(f"stylebot-{done.job_id}")
        else:
            data = (await asyncio.to_thread(encode_result, done.image, done.meta)).data
            filename = f"stylebot-{done.job_id}.png"
        channel, thread_ts = message.place.channel, place.thread_ts
        if not self.service.result_is_public(done.job_id):
            opened = await self.client.conversations_open(users=place.user)
            channel, thread_ts = opened["channel"]["id"], None
        await self.client.files_upload_v2(
            channel=channel, thread_ts=thread_ts, file=data,
            filename=filename, title=f"{done.meta.method} · job {done.job_id}",
            alt_txt=(handle.prompt or f"{'Clip' if fitted else 'Image'} restyled with "
                                      f"{done.meta.method}")[:1000])
        shown = changed_options(get_method(done.meta.method).options, done.meta.options)
        if channel != message.place.channel:
            await self.tell(place, f"Your result (job `{done.job_id}`) was sent to you in a direct "
                                   "message: results here are private.")
        refinement = self.service.refinement(done.job_id)
        status = refine.refining_text(None) if refinement is not None else None
        summary = await self.client.chat_postMessage(
            channel=channel, thread_ts=thread_ts,
            text=blocks.result_text(done.job_id, done.meta, place.user, fitted),
            blocks=blocks.result_blocks(done.job_id, done.meta, shown, place.user,
                                        prompt=handle.prompt, status=status,
                                        actions=self.service.result_actions(done.job_id),
                                        clip=fitted))
        await message.delete()
        log.info("job %s delivered to %s in %.1f s", done.job_id, place.channel, done.meta.seconds)
        if refinement is not None:
            await self._refine(handle, done, refinement, place,
                               summary.get("channel") or channel, summary["ts"])

    async def _refine(self, draft: "JobHandle", drafted: Done, refinement: refine.Refinement,
                      place: Place, channel: str, ts: str) -> None:
        """quality=refine: edit the draft's summary (chat.update) with the refinement's progress,
        then with the refined picture (a private upload the message shows) and its buttons; when
        it is stopped or fails, the draft stays, with its own buttons."""
        def summary(job_id: str, done: Done, **fields) -> list:
            shown = changed_options(get_method(done.meta.method).options, done.meta.options)
            return blocks.result_blocks(job_id, done.meta, shown, place.user, prompt=draft.prompt,
                                        actions=self.service.result_actions(job_id), **fields)

        text = blocks.result_text(draft.id, drafted.meta, place.user)

        async def show(status: str) -> None:
            try:
                await self.client.chat_update(channel=channel, ts=ts, text=text,
                                              blocks=summary(draft.id, drafted, status=status))
            except SlackApiError as exc:  # a missed progress edit is not worth failing over
                log.info("refine progress edit failed: %s", exc.response.get("error"))

        outcome = await refinement.follow(show, self.edit_interval_s)
        if isinstance(outcome, str):  # the draft stays
            await self.client.chat_update(channel=channel, ts=ts, text=text,
                                          blocks=summary(draft.id, drafted, status=outcome))
            return
        _, final = outcome
        encoded = await asyncio.to_thread(encode_result, final.image, final.meta)
        uploaded = await self.client.files_upload_v2(
            file=encoded.data, filename=f"stylebot-{final.job_id}.png",
            title=f"{final.meta.method} · job {final.job_id}")
        refined = summary(final.job_id, final, image=uploaded["file"]["id"])
        await self._show(channel, ts, blocks.result_text(final.job_id, final.meta, place.user), refined)
        log.info("job %s: refined result replaced draft %s in %s", final.job_id, draft.id, channel)

    async def _show(self, channel: str, ts: str, text: str, blocks_: list) -> None:
        """chat.update with an image block of a fresh upload, which Slack may need a moment for."""
        for attempt in range(SHOW_TRIES):
            try:
                await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks_)
                return
            except SlackApiError as exc:
                if exc.response.get("error") != "invalid_blocks" or attempt == SHOW_TRIES - 1:
                    raise
                await asyncio.sleep(1.0)

    async def close(self, grace_s: float = 2.0) -> None:
        """Let jobs in flight send their last message, then stop following them."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace_s)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
