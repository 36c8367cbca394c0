"""/train on Slack: learn a style from the image the user shared, in the background.

`/train NAME` takes the user's latest image in the channel (or a pasted Slack file link), as
/stylize finds its content. The service's refusals (CPU, content photos, limits, the name)
come in the ack, before any download. Progress is one channel message edited with the steps
done (``ProgressMessage``); when the network is ready a second message tells its owner how to
use it. `/train` alone lists the user's own styles: Slack has no autocomplete for commands;
`/train delete NAME` deletes one. `/cancel` stops a training (``StyleService.cancel``). The
*Train a style* message shortcut (``ui.Forms``) asks for a name and ends in ``begin`` too.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

from engine.errors import UserError
from stylebot.training_jobs import TrainingFailed, TrainingProgress, TrainingReady, TrainingWaiting

from . import render as blocks
from .flow import Place, ProgressMessage
from .inputs import foreign_link_error

if TYPE_CHECKING:
    from stylebot.training_jobs import TrainingHandle

log = logging.getLogger(__name__)

USAGE = ("Share the image whose style you want here, then `/train NAME` (letters, digits, - or _). "
         "It trains between other people's jobs; then `/stylize method=fast model=NAME`.")
_NAME = re.compile(r"(?:name\s*[:=]\s*)?(\S+)", re.I)


def progress_text(name: str, user: str, step: int, total: int) -> str:
    return f":mortar_board: Training style `{blocks.esc(name)}` for <@{user}>: {step}/{total} steps"


def waiting_text(name: str, user: str, ahead: int) -> str:
    return (f":hourglass: Training style `{blocks.esc(name)}` for <@{user}>: waiting for {ahead} "
            f"other training{'s' if ahead != 1 else ''} to finish")


def ready_text(user: str, name: str) -> str:
    return (f":white_check_mark: <@{user}>, your style `{blocks.esc(name)}` is ready: use it with "
            f"`/stylize method=fast model={blocks.esc(name)}` (only you can).")


class TrainCommand:
    """The /train listener, sharing the other listeners' flow, finder and downloader
    (``core``: the ``commands.Listeners``, which registers this one)."""

    def __init__(self, core: Any) -> None:
        self.core = core

    async def on_train(self, ack, command: dict[str, Any]) -> None:
        core = self.core
        slash = core.read(command)
        me = core.requester(slash.place)
        text = slash.text.strip()
        if not text or text.lower() == "list":
            await ack(text=self.listing(me), response_type="ephemeral")
            return
        if text.split()[0].lower() == "delete":
            await core.answer(ack, slash, self.delete(me, text.split()[1:]))
            return
        match = _NAME.fullmatch(text)
        try:
            if match is None:
                raise UserError(f"Give one name for your style, e.g. `/train starry-night`. {USAGE}")
            if slash.foreign:
                raise foreign_link_error(slash.foreign)
            core.service.check_training(me, match.group(1))
        except UserError as exc:
            await core.refuse(ack, exc)
            return
        await ack()
        await core.safely(slash.place, self.start(match.group(1), slash))

    def listing(self, me) -> str:
        """`/train` alone: how to use it, and the user's own styles (the models they may name)."""
        own = self.core.service.trained_styles(me)
        styles = ("Your styles: " + ", ".join(f"`{blocks.esc(n)}`" for n in own) + "."
                  if own else "You have no trained styles yet.")
        return f"{USAGE}\n{styles} `/train delete NAME` deletes one; `/cancel` stops a training."

    async def delete(self, me, words: list[str]) -> str:
        """`/train delete NAME`: one of the user's own styles."""
        if len(words) != 1:
            raise UserError("Name the style to delete, e.g. `/train delete starry-night`.")
        self.core.service.delete_trained_style(me, words[0])
        return f"Deleted your style `{blocks.esc(words[0])}`."

    async def start(self, name: str, slash: Any) -> None:
        core, place = self.core, slash.place
        images = await core.linked_images(slash.file_ids, place)
        images = images or await core.finder.recent_images(place.channel, place.user, place.thread_ts)
        if not images:
            raise UserError("I found no image you shared here in the last "
                            f"{blocks.window_text(core.settings.slack_image_window_s)}: share the "
                            f"style image (or paste its Slack file link), then `/train {name}` again.")
        await self.begin(name, place, images[0])

    async def begin(self, name: str, place: Place, style: Any) -> None:
        """Download ``style`` (a ``SlackFile``), start training it and follow the training;
        the /train command and the *Train a style* shortcut both end here."""
        core = self.core
        upload = await core.downloader.fetch(style)
        handle = await core.service.train(core.requester(place), upload, name)
        progress = ProgressMessage(core.client, place, core.flow.edit_interval_s)
        task = asyncio.create_task(self.follow(handle, progress, place),
                                   name=f"slack-train-{handle.id}")
        core.flow.tasks.add(task)
        task.add_done_callback(core.flow.tasks.discard)

    async def follow(self, handle: "TrainingHandle", progress: ProgressMessage, place: Place) -> None:
        """The progress message, edited; the ready message; a failure in the progress message."""
        try:
            async for event in handle.events():
                if isinstance(event, TrainingWaiting):
                    await progress.show(waiting_text(handle.name, place.user, event.ahead))
                elif isinstance(event, TrainingProgress):
                    await progress.show(progress_text(handle.name, place.user, event.step, event.total))
                elif isinstance(event, TrainingReady):
                    await progress.finish(progress_text(handle.name, place.user, event.steps,
                                                        event.steps) + " :white_check_mark:")
                    await self.core.client.chat_postMessage(channel=place.channel,
                                                            thread_ts=place.thread_ts,
                                                            text=ready_text(place.user, event.name))
                elif isinstance(event, TrainingFailed):
                    await progress.finish(f":warning: Training `{blocks.esc(handle.name)}` stopped: "
                                          f"{blocks.esc(event.message)}")
        except Exception:  # noqa: BLE001 - one training's messages must never affect another
            self.core.flow.failures += 1
            log.exception("slack: reporting training %s to %s failed", handle.id, place.user)
            await self.core.flow.tell(place, blocks.bug(handle.id))
