"""`/train` from chat: a fast-style training per user, run in the background at low priority.

The trainer is the same code as `stylebot train fast` (``engine.training.fast.train``), told
to save into the requester's own folder (``trained_styles``) and to take a background turn
of the device (``engine.turns``) around each step, so stylize jobs go first. With
``engine_process=child`` (the default) each training runs in a process of its own
(``engine.training.child``), so a crash in it fails that training alone; ``inline`` keeps
it on a thread of this process. At most
``trainings_at_once`` train together; later ones wait in line (``TrainingWaiting``). Who may
train what (the CPU rule, the content photos, per-user limits) is decided here, once, for
every front end; the front ends only show a ``TrainingHandle``'s events.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Union

from engine.errors import JobCancelled, UserError
from engine.images import encode_png
from engine.request import ImageUpload, Requester
from engine.training.child import TrainingCrashed

from .trained_styles import TrainedStyles

if TYPE_CHECKING:
    from engine.engine import StyleEngine

    from .settings import Settings

log = logging.getLogger(__name__)

CRASHED = ("Your training stopped unexpectedly (training {id}); nothing was saved. You can "
           "start it again, perhaps with another style image.")
STOPPED = "Stylebot is restarting, so your training was stopped; start it again in a while."
LINE_POLL_S = 0.2  # how often a waiting training looks for a free slot (and its cancel flag)
STYLE_SIDE = 1024  # the style image is read at the training size anyway; keep the copy small


@dataclass(frozen=True)
class TrainingWaiting:
    ahead: int  # trainings that start before this one (STYLEBOT_TRAININGS_AT_ONCE run at once)


@dataclass(frozen=True)
class TrainingProgress:
    step: int
    total: int


@dataclass(frozen=True)
class TrainingReady:
    name: str
    steps: int


@dataclass(frozen=True)
class TrainingFailed:
    message: str  # for the user, one line
    internal: bool = False


TrainingEvent = Union[TrainingWaiting, TrainingProgress, TrainingReady, TrainingFailed]
UNDER_WAY = (TrainingWaiting, TrainingProgress)  # the events before the final one


class TrainingHandle:
    """One training: its events from the first (replayed to late listeners), and a cancel."""

    def __init__(self, requester: Requester, name: str, total: int) -> None:
        self.id = uuid.uuid4().hex[:8]
        self.requester = requester
        self.name = name
        self.total = total
        self.cancel_event = threading.Event()
        self.cancel_reason = STOPPED
        self.history: list[TrainingEvent] = [TrainingProgress(0, total)]
        self._listeners: list[asyncio.Queue] = []

    @property
    def final(self) -> TrainingEvent | None:
        last = self.history[-1]
        return None if isinstance(last, UNDER_WAY) else last

    def emit(self, event: TrainingEvent) -> None:
        if self.final is not None:
            return
        if isinstance(event, UNDER_WAY) and isinstance(self.history[-1], UNDER_WAY):
            self.history[-1] = event  # only the latest state is worth replaying
        else:
            self.history.append(event)
        for listener in list(self._listeners):
            listener.put_nowait(event)

    def cancel(self, reason: str = STOPPED) -> None:
        """Stop at the next step (or while waiting for one); ``reason`` is told to the user."""
        self.cancel_reason = reason
        self.cancel_event.set()

    async def events(self) -> AsyncIterator[TrainingEvent]:
        """Every event, ending with ``TrainingReady`` or ``TrainingFailed``."""
        listener: asyncio.Queue = asyncio.Queue()
        for event in self.history:
            listener.put_nowait(event)
        if self.final is None:
            self._listeners.append(listener)
        try:
            while True:
                event = await listener.get()
                yield event
                if not isinstance(event, UNDER_WAY):
                    return
        finally:
            if listener in self._listeners:
                self._listeners.remove(listener)

    async def wait(self) -> TrainingEvent:
        async for event in self.events():
            if not isinstance(event, UNDER_WAY):
                return event
        raise AssertionError("training events ended without a final event")  # pragma: no cover


class TrainingJobs:
    """Starts, limits and runs every user's background training."""

    def __init__(self, settings: "Settings", engine: "StyleEngine", styles: TrainedStyles) -> None:
        self.settings = settings
        self.engine = engine
        self.styles = styles
        self._running: dict[str, TrainingHandle] = {}  # requester key -> their training
        self._line: list[TrainingHandle] = []  # started, waiting for one of the slots
        self._training = 0  # trainings on the device (at most settings.trainings_at_once)
        self._tasks: set[asyncio.Task] = set()

    def check(self, requester: Requester, name: str) -> None:
        """Every refusal that needs no image, so a front end answers before downloading."""
        if self.engine.device == "cpu" and not self.settings.allow_cpu_training:
            raise UserError("Training a style needs a GPU and this server has none (its operator "
                            "can allow slow CPU training with STYLEBOT_ALLOW_CPU_TRAINING).")
        count_training_photos(self.settings, for_user=True)
        mine = self._running.get(requester.key)
        if mine is not None:
            raise UserError(f"You are already training '{mine.name}'; wait until it is ready.")
        self.styles.check_new(requester, name)

    def running(self, requester: Requester) -> TrainingHandle | None:
        return self._running.get(requester.key)

    async def start(self, requester: Requester, style: ImageUpload, name: str) -> TrainingHandle:
        """Check, decode the style image and start training; ``UserError`` refuses."""
        name = name.strip()
        self.check(requester, name)
        image = await asyncio.to_thread(self.engine.decode, style, "style image", STYLE_SIDE)
        self.check(requester, name)  # others may have started meanwhile
        handle = TrainingHandle(requester, name, self.settings.training_steps)
        self._running[requester.key] = handle
        self._line.append(handle)
        self._announce()
        task = asyncio.create_task(self._run(handle, image, style.filename),
                                   name=f"stylebot-train-{handle.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("training %s: '%s' for %s, %d steps", handle.id, name, requester.key, handle.total)
        return handle

    async def stop(self) -> None:
        """Stop every training at its next step (shutdown); their users are told."""
        for handle in list(self._running.values()):
            handle.cancel()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run(self, handle: TrainingHandle, image, source: str) -> None:
        loop = asyncio.get_running_loop()

        def on_step(step: int, total: int) -> None:
            loop.call_soon_threadsafe(handle.emit, TrainingProgress(step, total))
            if handle.cancel_event.is_set():
                raise JobCancelled()

        folder = self.styles.folder(handle.requester)
        assert folder is not None
        slot = False
        try:
            slot = await self._take_slot(handle)
            steps = await asyncio.to_thread(self._train, handle, image, folder, on_step)
            self.styles.record(handle.requester, handle.name, steps=steps, source=source)
            handle.emit(TrainingReady(handle.name, steps))
            log.info("training %s: '%s' ready after %d steps", handle.id, handle.name, steps)
        except JobCancelled:
            handle.emit(TrainingFailed(handle.cancel_reason))
        except TrainingCrashed as exc:
            log.error("training %s ('%s' for %s): its process died: %s", handle.id, handle.name,
                      handle.requester.key, exc)
            handle.emit(TrainingFailed(CRASHED.format(id=handle.id), internal=True))
        except UserError as exc:
            log.info("training %s refused: %s", handle.id, exc.message)
            handle.emit(TrainingFailed(exc.message))
        except Exception:  # noqa: BLE001 - the user hears of it; the log has the details
            log.exception("training %s ('%s' for %s) failed", handle.id, handle.name,
                          handle.requester.key)
            handle.emit(TrainingFailed(f"Something went wrong on our side (training {handle.id}); "
                                       "it has been logged.", internal=True))
        finally:
            if slot:
                self._training -= 1
            elif handle in self._line:
                self._line.remove(handle)
            self._announce()
            shutil.rmtree(folder / f"{handle.name}.ckpt", ignore_errors=True)
            self._running.pop(handle.requester.key, None)

    async def _take_slot(self, handle: TrainingHandle) -> bool:
        """Wait in line until one of the ``trainings_at_once`` slots is free; True once taken."""
        while not (self._line[0] is handle and self._training < self.settings.trainings_at_once):
            if handle.cancel_event.is_set():
                raise JobCancelled()
            await asyncio.sleep(LINE_POLL_S)
        self._line.pop(0)
        self._training += 1
        handle.emit(TrainingProgress(0, handle.total))
        self._announce()
        return True

    def _announce(self) -> None:
        """Tell each waiting training how many start before it."""
        free = max(0, self.settings.trainings_at_once - self._training)
        for position, handle in enumerate(self._line):
            ahead = max(0, position + 1 - free)
            if ahead and handle.history[-1] != TrainingWaiting(ahead):
                handle.emit(TrainingWaiting(ahead))

    def _train(self, handle: TrainingHandle, image, folder: Path, on_step) -> int:
        """In a worker thread: the real trainer, a step per background turn of the device."""
        from engine.training.child import train_in_process
        from engine.training.fast import TrainConfig, train

        s = self.settings
        images = count_training_photos(s, for_user=True)
        with tempfile.TemporaryDirectory(prefix=".train-", dir=s.home) as work:
            style_path = Path(work) / "style.png"
            style_path.write_bytes(encode_png(image))
            epochs = math.ceil(s.training_steps * s.training_batch_size / max(1, images)) + 1
            config = TrainConfig(style=style_path, images=s.training_images, name=handle.name,
                                 epochs=epochs, max_steps=s.training_steps,
                                 batch_size=s.training_batch_size, image_size=s.training_image_size,
                                 checkpoint_every=10**9, device=self.engine.device, workers=0)
            if s.engine_process == "child":
                return train_in_process(config, s, folder, turns=self.engine.turns,
                                        cancel=handle.cancel_event, on_step=on_step,
                                        label=handle.id)
            result = train(config, s, out_dir=folder, on_step=on_step,
                           turn=lambda: self.engine.turns.background(handle.cancel_event))
        return result.step


def count_training_photos(settings: "Settings", *, for_user: bool) -> int:
    """The number of photos /train learns from, or a one-line ``UserError`` saying what is
    wrong with STYLEBOT_TRAINING_IMAGES (worded for a chat user, or for the operator)."""
    from engine.training.images import find_images

    folder = settings.training_images
    if folder is None:
        problem = "STYLEBOT_TRAINING_IMAGES is not set"
    else:
        try:
            return len(find_images(folder, "STYLEBOT_TRAINING_IMAGES"))
        except UserError as exc:
            problem = exc.message.rstrip(".")
    if for_user:
        raise UserError("Training styles is not set up on this server (it has no photos to learn "
                        "from); ask its operator.")
    raise UserError(f"/train is off: {problem}; point it at a folder of photos (docs/training.md).")
