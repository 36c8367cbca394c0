"""The order waiting jobs run in: round-robin between users, same-key jobs batched.

A first-come line lets one user with many jobs hold everyone else back. Instead each
batch starts with the oldest waiting job of the user served least recently, so a user
who sends one job waits for at most one batch of each user ahead of them. The queue asks
this module both which batch to run next and which positions to show, so the positions
users see are the order jobs will run in.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable, Protocol, Sequence, TypeVar

SERVED_KEPT = 10_000  # users remembered; the forgotten ones were served longest ago anyway
NEVER = 0  # the turn number of a user never served (turns count from 1)


class Waiting(Protocol):
    @property
    def user(self) -> str: ...

    def batch_key(self) -> Hashable | None: ...


J = TypeVar("J", bound=Waiting)


class Turns:
    """When each user was last served, counted in batches (not time, so ties are exact)."""

    def __init__(self) -> None:
        self.count = 0
        self.last: OrderedDict[str, int] = OrderedDict()

    def serve(self, users: Sequence[str]) -> None:
        """A batch with these users' jobs has started."""
        self.count += 1
        for user in users:
            self.last[user] = self.count
            self.last.move_to_end(user)
        while len(self.last) > SERVED_KEPT:
            self.last.popitem(last=False)

    def of(self, user: str) -> int:
        return self.last.get(user, NEVER)


def plan(waiting: Sequence[J], turns: Turns, max_batch: int,
         first_user: str | None = None) -> list[list[J]]:
    """Every waiting job in the batches they will run in, in order.

    ``waiting`` is in arrival order. ``first_user`` (when one of them waits) leads the first
    batch regardless, because a shared admission gave that user the next turn."""
    queues: dict[str, list[J]] = {}
    for job in waiting:
        queues.setdefault(job.user, []).append(job)
    arrival = {id(job): i for i, job in enumerate(waiting)}
    keys = {id(job): job.batch_key() for job in waiting}
    last = {user: turns.of(user) for user in queues}
    count = turns.count
    left = list(waiting)
    batches: list[list[J]] = []
    while left:
        if not batches and first_user in queues:
            user = first_user
        else:
            user = min(queues, key=lambda u: (last[u], arrival[id(queues[u][0])]))
        leader = queues[user][0]
        batch = [leader] + _riders(leader, left, keys, max_batch)
        count += 1
        for job in batch:
            left.remove(job)
            queues[job.user].remove(job)
            if not queues[job.user]:
                del queues[job.user]
            last[job.user] = count
        batches.append(batch)
    return batches


def _riders(leader: J, left: Sequence[J], keys: dict[int, Hashable | None],
            max_batch: int) -> list[J]:
    """Jobs that share the leader's forward pass: same batch key, taken round-robin between
    their users (the leader's user last), oldest first within a user."""
    key = keys[id(leader)]
    if key is None or max_batch <= 1:
        return []
    seen: dict[str, int] = {leader.user: 1}
    ranked = []
    for i, job in enumerate(left):
        if job is leader or keys[id(job)] != key:
            continue
        rank = seen.get(job.user, 0)
        seen[job.user] = rank + 1
        ranked.append((rank, i, job))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [job for _, _, job in ranked[: max_batch - 1]]
