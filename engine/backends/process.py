"""The default backend: methods run in one engine process of their own.

A crash in native code (a segfault in a CUDA kernel, an abort, the kernel's OOM killer)
then ends that process, not the bot: the queue, its fairness and every chat adapter stay
up in this process. A supervisor restarts the engine with capped exponential backoff.
A batch that was running when the engine died is run once more; if it kills the engine
again it is refused, and an identical job sent later is refused without running. A batch
that does not stop within ``KILL_GRACE_S`` of being cancelled (the queue's timeout, or
every user cancelling) has its engine killed and restarted the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import multiprocessing
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import JobCancelled, UserError
from . import Backend
from .engine_child import EngineChild
from .process_main import method_path, reported_error

if TYPE_CHECKING:
    from PIL import Image

    from ..engine import PreparedJob, ProgressFn, StyleEngine
    from ..video import Clip

log = logging.getLogger(__name__)

START_WAIT_S = 120.0  # the bot starts serving without the engine process after this long
KILL_GRACE_S = 5.0  # a cancelled batch gets this long to stop before its engine is killed
POISON_KEPT = 256  # jobs remembered as having crashed the engine twice


class EngineDown(UserError):
    """The engine process cannot start; operators see why on /healthz."""


class EngineCrashed(Exception):
    """The engine process died while running a batch."""


class EngineProcessError(Exception):
    """A method raised something that is not the user's error (a bug), in the engine process."""


class ProcessBackend(Backend):
    """Runs batches in one supervised child process; health says how that process is doing."""

    name = "local"

    def __init__(self, engine: "StyleEngine", *, restart_delay_s: float = 0.5,
                 max_restart_delay_s: float = 30.0, kill_grace_s: float = KILL_GRACE_S) -> None:
        self.engine = engine
        self.restart_delay_s = restart_delay_s
        self.max_restart_delay_s = max_restart_delay_s
        self.kill_grace_s = kill_grace_s
        self.state = "down"  # starting, ready, restarting, down
        self.restarts = 0
        self.last_crash: str | None = None
        self.last_crash_at: float | None = None
        self._child: EngineChild | None = None
        self._models: list[str] = []
        self._crashes_in_a_row = 0
        self._stopping = False
        self._supervisor: asyncio.Task | None = None
        self._changed = asyncio.Event()  # set, and replaced, at each change of state
        self._first_turn = asyncio.Event()
        self._batches = itertools.count(1)
        self._poisoned: deque[str] = deque(maxlen=POISON_KEPT)

    @property
    def device(self) -> str:
        child = self._child
        return child.device if child is not None and child.device else self.engine.device

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn the engine process and wait (up to ``START_WAIT_S``) until it is ready, so
        a job's time limit never counts the first start; one that fails is retried."""
        if self._supervisor is None:
            self._stopping = False
            self._first_turn = asyncio.Event()
            self._changed = asyncio.Event()  # this loop's, should an earlier one have ended
            self.state = "starting"  # before the supervisor's first turn, so jobs wait
            self._supervisor = asyncio.create_task(self._supervise(), name="stylebot-engine-process")
            try:
                await asyncio.wait_for(self._first_turn.wait(), START_WAIT_S)
            except asyncio.TimeoutError:
                log.warning("the engine process is not ready after %gs; jobs wait for it",
                            START_WAIT_S)

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                pass
            self._supervisor = None
        if self._child is not None:
            await self._child.stop()
        self._set_state("down")

    async def _supervise(self) -> None:
        """Keep one engine process alive: spawn, wait for it to die, back off, spawn again."""
        context = multiprocessing.get_context("spawn")
        try:
            while not self._stopping:
                reason = await self._one_life(context)
                if self._stopping:
                    return
                self._crashes_in_a_row += 1
                self.restarts += 1
                self._models = []  # they died with it
                self.last_crash, self.last_crash_at = reason, time.time()
                ready = self._child is not None and self._child.ready.is_set()
                log.error("engine process %s died: %s (restart %d)", self.pid, reason, self.restarts)
                self._set_state("restarting" if ready else "down")
                await asyncio.sleep(self._backoff())
        finally:
            if self._child is not None and not self._child.exited.is_set():
                await self._child.stop()

    async def _one_life(self, context: Any) -> str:
        """Start one engine process and wait for its end; why it ended."""
        self._set_state("starting" if self.restarts == 0 else "restarting")
        try:
            child = self._child = EngineChild(context, self.engine.settings)
            await child.started()
        except Exception as exc:  # noqa: BLE001 - e.g. no more processes: shown on /healthz
            log.exception("could not start the engine process")
            self._first_turn.set()
            return f"could not start: {type(exc).__name__}: {exc}"
        self._first_turn.set()
        if child.ready.is_set():
            log.info("engine process %s ready on %s", child.pid, child.device)
            self._set_state("ready")
        await child.exited.wait()
        return child.exit_reason or "exited"

    def _backoff(self) -> float:
        return min(self.max_restart_delay_s,
                   self.restart_delay_s * 2 ** max(0, self._crashes_in_a_row - 1))

    def _set_state(self, state: str) -> None:
        """Change the state and wake whoever waits for a change."""
        self.state = state
        self._changed.set()
        self._changed = asyncio.Event()

    async def _ready_child(self, cancel: threading.Event) -> EngineChild:
        """The running engine process, waiting while it (re)starts; refuse if it cannot start."""
        if self._supervisor is None:
            await self.start()
        while True:
            child = self._child
            if self.state == "ready" and child is not None and not child.exited.is_set():
                return child
            if self.state == "down":
                raise EngineDown("The style engine is not running right now (it failed to "
                                 "start); the operators can see why. Please try again later.")
            if cancel.is_set():
                raise JobCancelled()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.1)
            except asyncio.TimeoutError:
                pass

    # -- running ------------------------------------------------------------------------------

    async def run(self, jobs: list["PreparedJob"], on_progress: "ProgressFn",
                  cancel: threading.Event) -> list["Image.Image | Clip"]:
        self._refuse_poisoned(jobs)
        for attempt in (1, 2):
            child = await self._ready_child(cancel)
            if attempt == 2:
                on_progress(0.0, "The engine restarted after a crash; running your job again", None)
            try:
                # A /train step in its own process may hold the device: wait for it to end.
                async with self.engine.turns.interactive_on_loop():
                    return await self._run_on(child, jobs, on_progress, cancel)
            except EngineCrashed as crash:
                if cancel.is_set():
                    raise JobCancelled() from crash
                if attempt == 2:
                    self._poisoned.extend(_fingerprint(job) for job in jobs)
                    raise UserError(f"This job crashed the style engine twice (last time: {crash}), "
                                    "so it will not be run again; try a smaller size or "
                                    "another method.") from crash
                log.warning("engine died running %s; running the batch once more", _names(jobs))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run_on(self, child: EngineChild, jobs: list["PreparedJob"],
                      on_progress: "ProgressFn", cancel: threading.Event) -> list[Any]:
        batch = next(self._batches)
        child.cancel.clear()
        await child.send(("run", batch, [(method_path(j.method), j.input) for j in jobs]),
                         size=_pixel_bytes(jobs))
        kill_at: float | None = None
        while True:
            if cancel.is_set() and kill_at is None:
                kill_at = time.monotonic() + self.kill_grace_s
                child.cancel.set()
            if kill_at is not None and time.monotonic() > kill_at:
                child.kill(f"hung: did not stop within {self.kill_grace_s:g}s of being "
                           "cancelled or timing out, so it was killed")
                kill_at = float("inf")
            message = await child.next_message(timeout=0.05)
            if message is None:
                continue
            kind = message[0]
            if kind == "exit":
                raise EngineCrashed(child.exit_reason)
            if message[1] != batch:
                continue  # a late word about a batch that was given up
            if kind == "progress":
                on_progress(*message[2:])
            elif kind == "result":
                self._crashes_in_a_row = 0
                self._models = message[3]
                return message[2]
            elif kind == "error":
                raise reported_error(message[2], message[3], bug=EngineProcessError,
                                     where="engine process")

    def _refuse_poisoned(self, jobs: list["PreparedJob"]) -> None:
        if self._poisoned and any(_fingerprint(job) in self._poisoned for job in jobs):
            raise UserError("This job crashed the style engine twice before, so it is not run "
                            "again; try a smaller size or another method.")

    def health(self) -> dict[str, Any]:
        child = self._child
        return {"backend": self.name, "process": "child", "state": self.state,
                "pid": child.pid if child is not None and not child.exited.is_set() else None,
                "restarts": self.restarts, "last_crash": self.last_crash,
                "last_crash_at": round(self.last_crash_at, 3) if self.last_crash_at else None,
                "models_loaded": list(self._models)}


def _fingerprint(job: "PreparedJob") -> str:
    """Same method, options (the seed aside) and pixels: the same job, as far as a crash goes."""
    digest = hashlib.sha256(job.method.name.encode())
    options = {k: v for k, v in sorted(job.options.items()) if k != "seed"}
    digest.update(repr(options).encode())
    digest.update(job.input.content.tobytes())
    return digest.hexdigest()


def _pixel_bytes(jobs: list["PreparedJob"]) -> int:
    """About how many bytes a batch's images take on the wire."""
    total = 0
    for job in jobs:
        inp = job.input
        frames = inp.clip.frames if inp.clip is not None else []
        for image in [inp.content, *inp.styles, *([inp.mask] if inp.mask else []), *frames]:
            total += image.width * image.height * len(image.getbands())
    return total


def _names(jobs: list["PreparedJob"]) -> str:
    return f"{len(jobs)} {jobs[0].method.name} job(s)"


__all__ = ["EngineCrashed", "EngineDown", "EngineProcessError", "ProcessBackend"]
