"""One asyncio job queue in front of the engine, served by a single worker.

The worker hands batches to the engine's backend (``engine/backends``), as many at once as
the backend's ``concurrency`` (one for this machine's device, one per replica on Ray): a
thread of this process by default, so the event loop (and every chat adapter on it) stays
responsive, or a Ray Serve cluster. Batches take turns between users (``engine/order.py``),
and jobs that the method can batch and that share a batch key are run together. The
admission (``engine/admission.py``) holds the limits and turns across bot processes that
share one backend. Each job has a stream of events that any number of listeners can
follow, replayed from the start for late listeners.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

from .admission import Admission, Turn, make_admission, queue_full, too_many_jobs
from .backends import Backend, make_backend
from .engine import PreparedJob, StyleEngine
from .errors import JobCancelled, QueueFull, UserError
from .events import (Cancelled, Done, Failed, JobEvent, Progress, Queued, ResultMeta, Started,
                     is_final)
from .order import Turns, plan
from .request import Requester, StyleRequest
from .video import Clip

log = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL_S = 0.2
FINISHED_JOBS_KEPT = 200  # finished jobs (and their images) kept for late listeners
SHUTDOWN_MESSAGE = "Stylebot is restarting, so your job was not run. Please send it again in a minute."

Observer = Callable[["Job", JobEvent], Awaitable[None]]


@dataclass
class Job:
    """A queued or running request and everything said about it so far."""

    id: str
    requester: Requester
    prepared: PreparedJob
    created: float = field(default_factory=time.monotonic)
    started: float | None = None  # time.monotonic() when it began to run
    finished: float | None = None  # ... and when it ended, however it ended
    state: str = "queued"  # queued, running, done, failed, cancelled
    cancel_event: threading.Event = field(default_factory=threading.Event)
    history: list[JobEvent] = field(default_factory=list)
    listeners: list[asyncio.Queue] = field(default_factory=list)
    cancel_reason: str = "cancelled"

    @property
    def method(self) -> str:
        return self.prepared.method.name

    @property
    def user(self) -> str:
        return self.requester.key

    def batch_key(self):
        return self.prepared.batch_key()

    @property
    def final(self) -> JobEvent | None:
        return self.history[-1] if self.history and is_final(self.history[-1]) else None

    @property
    def run_seconds(self) -> float | None:
        """How long it ran, once ended; None for a job that never started."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


class JobHandle:
    """What a caller keeps after submitting: the job id, its events, and a way to cancel."""

    def __init__(self, queue: "JobQueue", job: Job) -> None:
        self._queue = queue
        self._job = job

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def state(self) -> str:
        return self._job.state

    @property
    def method(self) -> str:
        return self._job.method

    @property
    def options(self) -> dict[str, Any]:
        """The method's options after validation, defaults filled in."""
        return self._job.prepared.options

    @property
    def prompt(self) -> str | None:
        return self._job.prepared.request.prompt

    @property
    def seed(self) -> int | None:
        """The seed the job runs with, for methods where a seed means something."""
        return self._job.prepared.input.seed if "seed" in self._job.prepared.method.options else None

    @property
    def requester(self) -> Requester:
        return self._job.requester

    @property
    def final(self) -> JobEvent | None:
        """Done, Failed or Cancelled once the job has ended; None before."""
        return self._job.final

    def cancel(self, reason: str = "cancelled by the requester") -> bool:
        return self._queue.cancel(self._job.id, reason=reason)

    async def events(self) -> AsyncIterator[JobEvent]:
        """Every event of the job, from the first, ending with Done, Failed or Cancelled."""
        listener: asyncio.Queue = asyncio.Queue()
        for event in self._job.history:
            listener.put_nowait(event)
        if self._job.final is None:
            self._job.listeners.append(listener)
        try:
            while True:
                event = await listener.get()
                yield event
                if is_final(event):
                    return
        finally:
            if listener in self._job.listeners:
                self._job.listeners.remove(listener)

    async def wait(self) -> JobEvent:
        """The final event."""
        async for event in self.events():
            if is_final(event):
                return event
        raise AssertionError("event stream ended without a final event")  # pragma: no cover


class JobQueue:
    """Limits, ordering, batching, progress, cancellation and timeouts around the engine."""

    def __init__(self, engine: StyleEngine, *, backend: Backend | None = None,
                 admission: Admission | None = None,
                 observers: list[Observer] | None = None) -> None:
        self.engine = engine
        self.backend = backend or make_backend(engine)
        self.settings = engine.settings
        self.admission = admission or make_admission(self.settings)
        self._turns = Turns()
        self.observers: list[Observer] = list(observers or [])
        self._waiting: deque[Job] = deque()
        self._running: list[Job] = []  # the jobs of every batch in flight
        # Each batch in flight with the event that stops it once all its jobs are cancelled.
        self._batches: list[tuple[list[Job], threading.Event]] = []
        self._ended: list[Turn] = []  # slots of ended batches, handed back with the next ask
        self._jobs: dict[str, Job] = {}
        self._finished: deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task | None = None
        self._accepting = True
        self._observer_events: asyncio.Queue = asyncio.Queue()
        self._observer_task: asyncio.Task | None = None
        engine.turns.watch(lambda: self.waiting_count + self.running_count > 0)  # jobs go first

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self._worker is None:
            await self.backend.start()
            await self.admission.start()
        if self._observer_task is None:
            self._observer_task = asyncio.create_task(self._observe(), name="stylebot-observers")
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="stylebot-worker")

    async def stop(self, grace_s: float | None = None) -> None:
        """Refuse new jobs, tell waiting users, let the running batch finish within the grace."""
        self._accepting = False
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        while self._waiting:
            job = self._waiting.popleft()
            self._finish(job, Cancelled(job.id, SHUTDOWN_MESSAGE), state="cancelled")
        if self._worker is None:
            return
        if self._running:
            deadline = time.monotonic() + grace
            while self._running and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            for job in list(self._running):
                job.cancel_reason = SHUTDOWN_MESSAGE
                job.cancel_event.set()
            self._stop_batch_if_all_cancelled()
            while self._running:
                await asyncio.sleep(0.05)
        self._worker.cancel()
        try:
            await self._worker
        except asyncio.CancelledError:
            pass
        self._worker = None
        await self.admission.stop()  # first: the backend may stop the Ray the admission uses
        await self.backend.stop()
        await self.drain_observers()
        if self._observer_task is not None:
            self._observer_task.cancel()
            self._observer_task = None

    async def drain_observers(self) -> None:
        """Wait until observers (e.g. the job log) have seen every event so far."""
        if self._observer_task is not None:
            await self._observer_events.join()

    @property
    def accepting(self) -> bool:
        return self._accepting

    # -- submitting ------------------------------------------------------------------

    async def submit(self, request: StyleRequest) -> JobHandle:
        """Validate, decode and enqueue; raise ``UserError`` (incl. ``QueueFull``) to refuse."""
        self._check_room(request.requester)
        prepared = await asyncio.to_thread(self.engine.prepare, request)
        self._check_room(request.requester)  # others may have submitted meanwhile
        job_id = uuid.uuid4().hex[:8]
        await self.admission.admit(job_id, request.requester.key)  # counts every process's jobs
        try:
            self._check_room(request.requester)
        except QueueFull:
            self.admission.forget(job_id)
            raise
        return await self.enqueue(prepared, job_id=job_id)

    async def enqueue(self, prepared: PreparedJob, *, job_id: str | None = None) -> JobHandle:
        job = Job(id=job_id or uuid.uuid4().hex[:8], requester=prepared.request.requester,
                  prepared=prepared)
        self._jobs[job.id] = job
        self._waiting.append(job)
        self._announce_positions()  # a new user's job may go ahead of others'
        self._wakeup.set()
        return JobHandle(self, job)

    def _check_room(self, requester: Requester) -> None:
        if not self._accepting:
            raise QueueFull("Stylebot is shutting down and not taking new jobs; try again in a minute.")
        mine = sum(1 for j in self._active() if j.requester.key == requester.key)
        if mine >= self.settings.jobs_per_user:
            raise too_many_jobs(mine, self.settings.jobs_per_user)
        if len(self._waiting) >= self.settings.queue_size:
            raise queue_full(len(self._waiting))

    # -- asking and cancelling -------------------------------------------------------

    def _active(self) -> list[Job]:
        return list(self._running) + list(self._waiting)

    def active_jobs(self) -> list[tuple[Job, int]]:
        """Every job running or waiting, in the order they will finish, with positions."""
        return ([(job, 0) for job in self._running]
                + [(job, i + 1) for i, job in enumerate(self._order())])

    def jobs_of(self, requester: Requester) -> list[tuple[Job, int]]:
        """The requester's active jobs with their positions (0 = running)."""
        return [(job, position) for job, position in self.active_jobs()
                if job.requester.key == requester.key]

    def _order(self) -> list[Job]:
        """The waiting jobs in the order they will run (``engine/order.py``)."""
        return [job for batch in plan(list(self._waiting), self._turns, self.settings.max_batch)
                for job in batch]

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def handle(self, job_id: str) -> JobHandle | None:
        job = self._jobs.get(job_id)
        return JobHandle(self, job) if job else None

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    @property
    def running_count(self) -> int:
        return len(self._running)

    def cancel(self, job_id: str, requester: Requester | None = None,
               reason: str = "cancelled by the requester") -> bool:
        """Cancel a queued job at once or ask a running one to stop at its next step."""
        job = self._jobs.get(job_id)
        if job is None or job.final is not None:
            return False
        if requester is not None and job.requester.key != requester.key:
            return False
        job.cancel_reason = reason
        job.cancel_event.set()
        if job in self._waiting:
            self._waiting.remove(job)
            self._finish(job, Cancelled(job.id, reason), state="cancelled")
            self._announce_positions()
            self._wakeup.set()  # a worker waiting for its turn names the users still waiting
        else:
            self._stop_batch_if_all_cancelled()
        return True

    def _stop_batch_if_all_cancelled(self) -> None:
        """A batch keeps running while any of its jobs still wants the result."""
        for batch, stop in self._batches:
            if all(job.cancel_event.is_set() for job in batch):
                stop.set()

    # -- the worker ------------------------------------------------------------------

    async def _work(self) -> None:
        in_flight: set[asyncio.Task] = set()
        try:
            while True:
                while not self._waiting or len(in_flight) >= self.backend.concurrency:
                    if not self._waiting:
                        self._end_turns()
                    self._wakeup.clear()
                    await self._wakeup.wait()
                ending = self._ended.pop() if self._ended else None
                turn = await self._next_turn(ending)
                if turn is None:
                    continue
                if not self._waiting:  # all cancelled while waiting for the turn
                    self.admission.end(turn)
                    continue
                batch = self._take_batch(turn.user)
                self.admission.started(turn, [job.id for job in batch])
                self._announce_positions()
                task = asyncio.create_task(self._serve_batch(batch, turn))
                in_flight.add(task)
                task.add_done_callback(lambda done: (in_flight.discard(done), self._wakeup.set()))
        finally:
            for task in in_flight:
                task.cancel()
            self._end_turns()

    def _end_turns(self) -> None:
        """Give back the slots of ended batches that no next batch is asking to follow."""
        while self._ended:
            self.admission.end(self._ended.pop())

    async def _serve_batch(self, batch: list[Job], turn: Turn) -> None:
        stop = threading.Event()
        self._batches.append((batch, stop))
        try:
            await self._run_batch(batch, stop)
        except Exception:  # the worker must survive anything one batch does
            log.exception("worker error on jobs %s", [j.id for j in batch])
            for job in batch:
                if job.final is None:
                    self._finish(job, Failed(job.id, _bug_message(job.id), internal=True),
                                 state="failed")
        finally:
            self._batches.remove((batch, stop))
            self._running = [job for job in self._running if job not in batch]
            # The slot is handed back with the next turn asked for, so this process's users
            # line up for the next slot alongside everyone else's instead of behind them.
            self._ended.append(turn)

    async def _next_turn(self, ending: Turn | None) -> Turn | None:
        """Wait until the admission lets this process run a batch, keeping it told which
        users wait here; None when none wait any more. ``ending`` is the slot of the batch
        just run: given back in the same step, so this process's users queue up for the
        next slot alongside everyone else's instead of behind them."""
        users = self._users_waiting()
        asking = asyncio.ensure_future(self.admission.turn(users, ending=ending))
        try:
            while not asking.done():
                self._wakeup.clear()
                woken = asyncio.ensure_future(self._wakeup.wait())
                await asyncio.wait({asking, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if not asking.done() and self._users_waiting() != users:
                    users = self._users_waiting()
                    self.admission.want(users)
        finally:
            asking.cancel()  # only if this worker itself is being cancelled
        return asking.result()

    def _users_waiting(self) -> list[str]:
        return list(dict.fromkeys(job.user for job in self._order()))

    def _take_batch(self, user: str | None = None) -> list[Job]:
        """The next batch by the round-robin plan, led by ``user`` when the admission says so."""
        batch = plan(list(self._waiting), self._turns, self.settings.max_batch, first_user=user)[0]
        for job in batch:
            self._waiting.remove(job)
        self._turns.serve([job.user for job in batch])
        self._running.extend(batch)
        return batch

    def _announce_positions(self) -> None:
        for position, job in enumerate(self._order(), start=1):
            last = next((e for e in reversed(job.history) if isinstance(e, Queued)), None)
            if last is None or last.position != position:
                self._emit(job, Queued(job.id, position))

    async def _run_batch(self, batch: list[Job], batch_cancel: threading.Event) -> None:
        device = self.backend.device
        for job in batch:
            job.state = "running"
            job.started = time.monotonic()
            self._emit(job, Started(job.id, device))
        loop = asyncio.get_running_loop()
        throttle = {"at": 0.0, "fraction": -1.0}

        def on_progress(fraction: float, stage: str, preview) -> None:
            now = time.monotonic()
            if (preview is None and fraction < 1.0 and now - throttle["at"] < PROGRESS_MIN_INTERVAL_S
                    and fraction - throttle["fraction"] < 0.05):
                return
            throttle.update(at=now, fraction=fraction)
            for job in batch:
                loop.call_soon_threadsafe(self._emit, job, Progress(job.id, fraction, stage, preview))

        started = time.perf_counter()
        future = asyncio.ensure_future(
            self.backend.run([j.prepared for j in batch], on_progress, batch_cancel))
        timed_out = False
        try:
            results = await asyncio.wait_for(asyncio.shield(future), self.settings.job_timeout_s)
            error: BaseException | None = None
        except asyncio.TimeoutError:
            timed_out = True
            batch_cancel.set()
            error = None
            results = None
            try:
                await future  # the method stops at its next progress call
            except BaseException as exc:  # noqa: BLE001 - reported below
                error = exc
        except BaseException as exc:  # noqa: BLE001 - every failure is reported to its job
            results, error = None, exc
        seconds = time.perf_counter() - started

        for i, job in enumerate(batch):
            if job.cancel_event.is_set() and not timed_out:
                self._finish(job, Cancelled(job.id, job.cancel_reason), state="cancelled")
            elif timed_out:
                minutes = self.settings.job_timeout_s / 60
                self._finish(job, Failed(job.id, f"Your job took longer than the {minutes:g}-minute "
                                               f"limit and was stopped (job {job.id}).", "timeout"),
                                   state="failed")
            elif error is not None:
                self._finish(job, self._failure(job, error), state="failed")
            else:
                result = results[i]
                clip = result if isinstance(result, Clip) else None
                extra = ({"frames": len(clip.frames), "fps": clip.fps, "kind": clip.kind}
                         if clip is not None else {})
                meta = ResultMeta(method=job.method, options=dict(job.prepared.options),
                                  seconds=round(seconds, 3), device=device, seed=job.prepared.input.seed,
                                  size=result.size, prompt=job.prepared.request.prompt, extra=extra)
                image = clip.frames[0] if clip is not None else result
                self._finish(job, Done(job.id, image, meta, clip=clip), state="done")

    def _failure(self, job: Job, error: BaseException) -> Failed:
        if isinstance(error, UserError):
            log.info("job %s (%s) refused: %s", job.id, job.method, error.message)
            return Failed(job.id, error.message, type(error).__name__)
        if isinstance(error, JobCancelled):
            return Failed(job.id, f"Your job was stopped (job {job.id}).", "cancelled")
        log.error("job %s (%s, user %s) failed", job.id, job.method, job.requester.key,
                  exc_info=(type(error), error, error.__traceback__))
        return Failed(job.id, _bug_message(job.id), f"{type(error).__name__}: {error}", internal=True)

    # -- events ------------------------------------------------------------------------

    def _finish(self, job: Job, event: JobEvent, *, state: str) -> None:
        job.state = state
        job.finished = time.monotonic()
        self.admission.forget(job.id)
        self._emit(job, event)
        self._finished.append(job.id)
        while len(self._finished) > FINISHED_JOBS_KEPT:
            self._jobs.pop(self._finished.popleft(), None)

    def _emit(self, job: Job, event: JobEvent) -> None:
        if job.final is not None:
            return
        if isinstance(event, Progress) and job.history and isinstance(job.history[-1], Progress):
            job.history[-1] = event  # keep the replay short: only the latest progress
        else:
            job.history.append(event)
        for listener in list(job.listeners):
            listener.put_nowait(event)
        if self.observers and not isinstance(event, Progress):
            self._observer_events.put_nowait((job, event))

    async def _observe(self) -> None:
        """Feed observers in event order, one event at a time."""
        while True:
            job, event = await self._observer_events.get()
            for observer in self.observers:
                try:
                    await observer(job, event)
                except Exception:  # an observer (e.g. the job log) must never break the queue
                    log.exception("event observer failed for job %s", job.id)
            self._observer_events.task_done()


def _bug_message(job_id: str) -> str:
    return f"Something went wrong on our side (job {job_id}); it has been logged."
