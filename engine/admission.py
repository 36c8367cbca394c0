"""Admission: the per-user limits and the turns to run, for one bot process or for many.

The queue (``engine/queue.py``) keeps its own users fair. When several bot processes send
batches to one shared backend, each queue alone cannot: a user could keep
``jobs_per_user`` jobs in every process, and a busy process would take every slot of the
backend. The ``admission`` setting chooses who decides:

- ``local``: this process alone (one process, or backends that are not shared).
- ``ray``: one detached Ray actor (``engine/turns.py``) that every bot process on the
  cluster shares; it counts jobs everywhere and grants ``admission_slots`` turns at a time,
  round-robin between users across processes.

Admission knows nothing of where batches run; any backend works with either.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import QueueFull

if TYPE_CHECKING:
    from .settings import EngineSettings

log = logging.getLogger(__name__)

ACTOR_NAME = "stylebot-admission"
NAMESPACE = "stylebot"


def too_many_jobs(mine: int, limit: int) -> QueueFull:
    return QueueFull(f"You already have {mine} job{'s' if mine > 1 else ''} queued or running "
                     f"(the limit is {limit}); wait for one to finish or cancel one.")


def queue_full(waiting: int) -> QueueFull:
    return QueueFull(f"The queue is full ({waiting} jobs waiting); "
                     "please try again in a few minutes.")


@dataclass(frozen=True)
class Turn:
    """Leave to run one batch led by ``user``'s oldest job; ``lease`` names the slot held."""

    user: str
    lease: str | None = None


class Admission(ABC):
    """Decides whether a job may join and when this process's next batch may run."""

    name = "?"

    async def start(self) -> None:
        """Connect to what the admission needs; called once before the first job."""

    async def stop(self) -> None:
        """Give back everything this process holds."""

    @abstractmethod
    async def admit(self, job_id: str, user: str) -> None:
        """Record a new job, or raise ``QueueFull`` (the user's limit, or the queue's size)."""

    def forget(self, job_id: str) -> None:
        """The job ended (done, failed, cancelled, timed out); it counts no more."""

    @abstractmethod
    async def turn(self, users: list[str], *, ending: Turn | None = None) -> Turn | None:
        """Wait for leave to run a batch of one of ``users`` (this process's waiting users in
        its own round-robin order); None when ``want([])`` withdrew the request. ``ending``
        (the batch just run) ends in the same step."""

    def want(self, users: list[str]) -> None:
        """While ``turn`` waits: the users waiting here changed (``[]``: none wait now)."""

    def started(self, turn: Turn, job_ids: list[str]) -> None:
        """The jobs of the batch run under ``turn``."""

    def end(self, turn: Turn) -> None:
        """The batch ended, however it ended; its slot is free."""


class LocalAdmission(Admission):
    """One process: the queue's own counts are complete and its one worker is the only slot."""

    name = "local"

    async def admit(self, job_id: str, user: str) -> None:
        return None

    async def turn(self, users: list[str], *, ending: Turn | None = None) -> Turn | None:
        return Turn(users[0]) if users else None


class RayAdmission(Admission):
    """The client of the shared admission actor; one per bot process.

    When the actor cannot be reached, jobs are admitted and batches run on this process's
    own limits (logged): fairness degrades, the bot keeps working."""

    name = "ray"

    def __init__(self, settings: "EngineSettings") -> None:
        self.settings = settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.actor = None
        self._beating: asyncio.Task | None = None
        # What this process holds, told again if the actor ever forgets us (``_beat``).
        self._jobs: dict[str, str] = {}
        self._leases: dict[str, tuple[str, list[str]]] = {}

    async def start(self) -> None:
        self.actor = await asyncio.to_thread(self._connect)
        await self.actor.join.remote(self.owner, self.settings.admission_slots)
        self._beating = asyncio.create_task(self._beat(), name="stylebot-admission-beat")

    def _connect(self):
        import ray
        from ray import cloudpickle

        from . import turns

        if not ray.is_initialized():
            ray.init(address=self.settings.ray_address, namespace=NAMESPACE,
                     logging_level=logging.WARNING, log_to_driver=False)
        cloudpickle.register_pickle_by_value(turns)  # the cluster needs no copy of Stylebot
        actor_class = ray.remote(turns.AdmissionActor)
        return actor_class.options(
            name=ACTOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            num_cpus=0, max_restarts=-1, max_concurrency=1000,
        ).remote(self.settings.admission_slots, self.settings.admission_lease_s)

    async def stop(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
            self._beating = None
        if self.actor is not None:
            try:
                await self.actor.leave.remote(self.owner)
            except Exception:  # noqa: BLE001 - the actor forgets us when we stop beating
                log.warning("could not tell the admission actor that %s leaves", self.owner,
                            exc_info=True)

    async def admit(self, job_id: str, user: str) -> None:
        try:
            refusal = await self.actor.admit.remote(self.owner, job_id, user,
                                                    self.settings.jobs_per_user,
                                                    self.settings.queue_size)
        except Exception:  # noqa: BLE001 - see the class docstring
            log.warning("admission actor unreachable; job %s admitted on local limits", job_id,
                        exc_info=True)
            refusal = None
        if refusal is not None:
            why, count = refusal
            raise too_many_jobs(count, self.settings.jobs_per_user) if why == "user" \
                else queue_full(count)
        self._jobs[job_id] = user

    def forget(self, job_id: str) -> None:
        if self._jobs.pop(job_id, None) is not None:
            self._tell("forget", self.owner, job_id)

    async def turn(self, users: list[str], *, ending: Turn | None = None) -> Turn | None:
        ending_lease = ending.lease if ending is not None else None
        self._leases.pop(ending_lease, None)
        if not users:
            if ending_lease is not None:
                self.end(ending)
            return None
        try:
            granted = await self.actor.turn.remote(self.owner, users, ending_lease)
        except Exception:  # noqa: BLE001 - see the class docstring
            log.warning("admission actor unreachable; running without a turn", exc_info=True)
            return Turn(users[0])
        if granted is None:
            return None
        lease, user = granted
        self._leases[lease] = (user, [])
        return Turn(user, lease)

    def want(self, users: list[str]) -> None:
        self._tell("update", self.owner, users)

    def started(self, turn: Turn, job_ids: list[str]) -> None:
        if turn.lease is not None:
            self._leases[turn.lease] = (turn.user, list(job_ids))
            self._tell("started", turn.lease, job_ids)

    def end(self, turn: Turn) -> None:
        if turn.lease is not None:
            self._leases.pop(turn.lease, None)
            self._tell("end", turn.lease)

    def _tell(self, method: str, *args) -> None:
        """Fire and forget: Ray delivers one caller's calls to the actor in order."""
        try:
            getattr(self.actor, method).remote(*args)
        except Exception:  # noqa: BLE001 - logged; what it held frees when this process stops
            log.warning("admission actor: %s failed", method, exc_info=True)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.admission_lease_s / 3)
            try:
                if not await self.actor.beat.remote(self.owner):
                    log.warning("admission actor had forgotten %s; telling it our %d jobs "
                                "again", self.owner, len(self._jobs))
                    await self.actor.rejoin.remote(self.owner, dict(self._jobs),
                                                   dict(self._leases))
            except Exception:  # noqa: BLE001 - keep beating; the actor restarts
                log.warning("admission actor: heartbeat failed", exc_info=True)


def make_admission(settings: "EngineSettings") -> Admission:
    """The admission the settings name ('auto': shared on Ray when the engine runs on Ray)."""
    kind = settings.admission
    if kind == "auto":
        kind = "ray" if settings.engine == "ray" else "local"
    return RayAdmission(settings) if kind == "ray" else LocalAdmission()
