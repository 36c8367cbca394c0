"""The shared book of every bot process's jobs and turns, kept by one Ray actor.

Several bot processes may send batches to one backend. Each process's queue is fair
within itself; this book makes the limits and the turns fair across them: it counts every
user's jobs in every process (so ``jobs_per_user`` holds everywhere), and hands out the
backend's slots one batch at a time, round-robin between the users waiting anywhere.

A process that dies cannot say goodbye, so every process beats (``beat``) while it lives;
one silent for ``lease_s`` is dropped with its jobs, requests and slots. One dropped while
alive (a long stall, or this actor restarted and lost its book) hears so at its next beat
and tells what it holds again (``rejoin``). This module
imports only the standard library: Ray ships it to the actor by value, so the cluster's
workers need no copy of Stylebot.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable

SERVED_KEPT = 10_000  # users remembered; the forgotten were served longest ago anyway
GRANTS_KEPT = 200  # recent grants kept for ``snapshot`` (operators, tests)


@dataclass
class _Process:
    seen: float
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> user
    running: set[str] = field(default_factory=set)


@dataclass
class _Lease:
    owner: str
    user: str
    turn: int
    jobs: set[str] = field(default_factory=set)


class TurnBook:
    """Plain bookkeeping, no I/O: who has which jobs, who waits for a turn, who holds a slot."""

    def __init__(self, slots: int = 1, lease_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = slots
        self.lease_s = lease_s
        self.clock = clock
        self.processes: dict[str, _Process] = {}
        self.requests: dict[str, tuple[int, list[str]]] = {}  # owner -> (asked at, users)
        self.leases: dict[str, _Lease] = {}
        self.served: OrderedDict[str, int] = OrderedDict()  # user -> turn last served
        self.turns = 0
        self.asked = 0
        self.grants: deque[tuple[str, str]] = deque(maxlen=GRANTS_KEPT)  # (owner, user)

    # -- processes -------------------------------------------------------------------

    def heard(self, owner: str) -> _Process:
        process = self.processes.get(owner)
        if process is None:
            process = self.processes[owner] = _Process(self.clock())
        process.seen = self.clock()
        return process

    def rejoin(self, owner: str, jobs: dict[str, str],
               leases: dict[str, tuple[str, list[str]]]) -> None:
        """A process dropped while alive (a long stall, or this actor restarted) tells what
        it holds: its jobs (id -> user) and its leases (id -> (user, job ids)). Merged, not
        replaced: what it did since the drop is already here."""
        process = self.heard(owner)
        for job_id, user in jobs.items():
            process.jobs.setdefault(job_id, user)
        for lease_id, (user, job_ids) in leases.items():
            if lease_id not in self.leases:  # briefly more than ``slots``: it ends soon
                running = {j for j in job_ids if j in process.jobs}
                self.leases[lease_id] = _Lease(owner, user, self.turns, running)
                process.running |= running

    def drop(self, owner: str) -> None:
        """Forget a process that left or died, freeing its jobs and slots."""
        self.processes.pop(owner, None)
        self.requests.pop(owner, None)
        for lease_id in [i for i, lease in self.leases.items() if lease.owner == owner]:
            del self.leases[lease_id]

    def expire(self) -> list[str]:
        """Drop every process silent for longer than ``lease_s``; the ones dropped."""
        deadline = self.clock() - self.lease_s
        gone = [owner for owner, p in self.processes.items() if p.seen < deadline]
        for owner in gone:
            self.drop(owner)
        return gone

    # -- jobs --------------------------------------------------------------------------

    def admit(self, owner: str, job_id: str, user: str, limit: int,
              queue_size: int) -> tuple[str, int] | None:
        """Record the job, or say why not: ('user', jobs the user has) or ('full', waiting)."""
        mine = sum(1 for p in self.processes.values() for u in p.jobs.values() if u == user)
        if mine >= limit:
            return ("user", mine)
        waiting = sum(len(p.jobs) - len(p.running) for p in self.processes.values())
        if waiting >= queue_size:
            return ("full", waiting)
        self.heard(owner).jobs[job_id] = user
        return None

    def forget(self, owner: str, job_id: str) -> None:
        """The job ended, however it ended."""
        process = self.heard(owner)
        process.jobs.pop(job_id, None)
        process.running.discard(job_id)

    # -- turns ---------------------------------------------------------------------------

    def ask(self, owner: str, users: list[str], ending: str | None = None) -> None:
        """The process waits for a slot for one of ``users`` (in its own order), giving back
        the lease ``ending`` first, so it competes for that slot too."""
        self.heard(owner)
        if ending is not None:
            self.end(ending)
        self.asked += 1
        if users:
            self.requests[owner] = (self.asked, list(users))
        else:
            self.requests.pop(owner, None)

    def update(self, owner: str, users: list[str]) -> bool:
        """The users waiting in a process changed while it waits; False if it waits no more."""
        self.heard(owner)
        if owner not in self.requests:
            return False
        if users:
            self.requests[owner] = (self.requests[owner][0], list(users))
            return True
        del self.requests[owner]
        return False

    def grant(self) -> list[tuple[str, str, str]]:
        """Hand out free slots: (owner, lease id, user) for each, the least recently served
        user first (never served counts as longest ago), then the earliest request."""
        out = []
        while len(self.leases) < self.slots and self.requests:
            _, _, _, owner, user = min(
                (self.served.get(u, 0), asked, i, owner, u)
                for owner, (asked, users) in self.requests.items() for i, u in enumerate(users))
            del self.requests[owner]
            self.turns += 1
            self._serve(user)
            lease_id = uuid.uuid4().hex[:12]
            self.leases[lease_id] = _Lease(owner, user, self.turns)
            self.grants.append((owner, user))
            out.append((owner, lease_id, user))
        return out

    def started(self, lease_id: str, job_ids: list[str]) -> None:
        """The jobs of the batch run under this lease; users riding along count as served."""
        lease = self.leases.get(lease_id)
        process = self.processes.get(lease.owner) if lease else None
        if lease is None or process is None:
            return
        for job_id in job_ids:
            if job_id in process.jobs:
                lease.jobs.add(job_id)
                process.running.add(job_id)
                if process.jobs[job_id] != lease.user:
                    self._serve(process.jobs[job_id], lease.turn)

    def end(self, lease_id: str) -> None:
        lease = self.leases.pop(lease_id, None)
        process = self.processes.get(lease.owner) if lease else None
        if process is not None:
            process.running -= lease.jobs

    def _serve(self, user: str, turn: int | None = None) -> None:
        self.served[user] = max(self.served.get(user, 0), turn or self.turns)
        self.served.move_to_end(user)
        while len(self.served) > SERVED_KEPT:
            self.served.popitem(last=False)

    def snapshot(self) -> dict:
        """What the book holds, for operators and tests."""
        return {"slots": self.slots, "processes": len(self.processes),
                "jobs": {o: dict(p.jobs) for o, p in self.processes.items()},
                "requests": {o: users for o, (_, users) in self.requests.items()},
                "leases": {i: (lease.owner, lease.user) for i, lease in self.leases.items()},
                "grants": list(self.grants)}


class AdmissionActor:
    """The async Ray actor around a ``TurnBook``: a waiting ``turn`` call is answered when a
    slot is granted, and a reaper drops processes that stopped beating."""

    def __init__(self, slots: int, lease_s: float) -> None:
        self.book = TurnBook(slots, lease_s)
        self._waiters: dict[str, asyncio.Future] = {}
        self._reaper: asyncio.Task | None = None

    async def join(self, owner: str, slots: int) -> None:
        self._start_reaper()
        self.book.slots = slots  # the latest process to start says how big the backend is
        self.book.heard(owner)

    async def beat(self, owner: str) -> bool:
        """Keep the process alive; False when it had been dropped (then it ``rejoin``s)."""
        self._start_reaper()  # also after Ray restarted this actor
        known = owner in self.book.processes
        self.book.heard(owner)
        return known

    async def rejoin(self, owner: str, jobs: dict[str, str],
                     leases: dict[str, tuple[str, list[str]]]) -> None:
        self.book.rejoin(owner, jobs, leases)

    async def leave(self, owner: str) -> None:
        self.book.drop(owner)
        self._answer(owner, None)
        self._dispatch()

    async def admit(self, owner: str, job_id: str, user: str, limit: int,
                    queue_size: int) -> tuple[str, int] | None:
        return self.book.admit(owner, job_id, user, limit, queue_size)

    async def forget(self, owner: str, job_id: str) -> None:
        self.book.forget(owner, job_id)

    async def turn(self, owner: str, users: list[str],
                   ending: str | None = None) -> tuple[str, str] | None:
        """Wait for a slot: (lease id, the user whose batch runs), or None if withdrawn."""
        self._start_reaper()
        self._answer(owner, None)  # a process waits for one turn at a time
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[owner] = waiter
        self.book.ask(owner, users, ending)
        self._dispatch()
        return await waiter

    async def update(self, owner: str, users: list[str]) -> None:
        if not self.book.update(owner, users):
            self._answer(owner, None)
        self._dispatch()

    async def started(self, lease_id: str, job_ids: list[str]) -> None:
        self.book.started(lease_id, job_ids)

    async def end(self, lease_id: str) -> None:
        self.book.end(lease_id)
        self._dispatch()

    async def snapshot(self) -> dict:
        return self.book.snapshot()

    def _dispatch(self) -> None:
        granted = self.book.grant()
        while granted:
            for owner, lease_id, user in granted:
                waiter = self._waiters.pop(owner, None)
                if waiter is None or waiter.done():  # nobody to tell: give the slot back
                    self.book.end(lease_id)
                else:
                    waiter.set_result((lease_id, user))
            granted = self.book.grant()

    def _answer(self, owner: str, value) -> None:
        waiter = self._waiters.pop(owner, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(value)

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(max(self.book.lease_s / 4, 0.05))
            for owner in self.book.expire():
                self._answer(owner, None)
            self._dispatch()
