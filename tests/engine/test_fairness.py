"""Round-robin between users: the order within one queue (engine/order.py) and the shared
book that extends it across bot processes (engine/turns.py), without Ray."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from engine.admission import LocalAdmission, RayAdmission, make_admission
from engine.order import Turns, plan
from engine.settings import EngineSettings
from engine.turns import AdmissionActor, TurnBook


@dataclass(eq=False)
class J:
    name: str
    key: object = None

    @property
    def user(self) -> str:
        return self.name[0]

    def batch_key(self):
        return self.key


def names(batches):
    return [[job.name for job in batch] for batch in batches]


def test_a_user_with_many_jobs_waits_behind_one_who_came_later():
    waiting = [J("a1"), J("a2"), J("a3"), J("b1"), J("c1"), J("b2")]
    assert names(plan(waiting, Turns(), 4)) == [["a1"], ["b1"], ["c1"], ["a2"], ["b2"], ["a3"]]


def test_the_user_served_least_recently_goes_first():
    turns = Turns()
    turns.serve(["b"])
    turns.serve(["a"])  # a was served after b
    waiting = [J("a1"), J("b1"), J("c1")]
    assert names(plan(waiting, turns, 4)) == [["c1"], ["b1"], ["a1"]]


def test_same_key_jobs_ride_along_round_robin_between_users():
    waiting = [J("a1", "k"), J("a2", "k"), J("a3", "k"), J("b1", "k"), J("c1", "x"), J("b2", "k")]
    # a leads; riders take one job per user first (b1 before a2), up to max_batch.
    assert names(plan(waiting, Turns(), 3)) == [["a1", "b1", "a2"], ["c1"], ["a3", "b2"]]
    assert names(plan(waiting, Turns(), 1)) == [["a1"], ["b1"], ["c1"], ["a2"], ["b2"], ["a3"]]


def test_a_user_named_by_the_admission_leads_the_first_batch():
    waiting = [J("a1"), J("b1"), J("b2")]
    assert names(plan(waiting, Turns(), 4, first_user="b")) == [["b1"], ["a1"], ["b2"]]
    assert names(plan(waiting, Turns(), 4, first_user="gone")) == [["a1"], ["b1"], ["b2"]]


def test_forgotten_users_count_as_served_longest_ago(monkeypatch):
    from engine import order

    monkeypatch.setattr(order, "SERVED_KEPT", 2)
    turns = Turns()
    for user in "abc":
        turns.serve([user])
    assert list(turns.last) == ["b", "c"] and turns.of("a") == order.NEVER


# -- the shared book -------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_limits_count_a_users_jobs_in_every_process():
    book = TurnBook()
    assert book.admit("p1", "j1", "alice", limit=2, queue_size=10) is None
    assert book.admit("p2", "j2", "alice", limit=2, queue_size=10) is None
    assert book.admit("p2", "j3", "alice", limit=2, queue_size=10) == ("user", 2)
    assert book.admit("p1", "j4", "bob", limit=2, queue_size=2) == ("full", 2)
    book.forget("p1", "j1")
    assert book.admit("p2", "j3", "alice", limit=2, queue_size=10) is None


def test_running_jobs_count_for_the_user_but_not_as_waiting():
    book = TurnBook(slots=1)
    book.admit("p1", "j1", "alice", limit=5, queue_size=1)
    book.ask("p1", ["alice"])
    [(owner, lease, user)] = book.grant()
    book.started(lease, ["j1"])
    assert book.admit("p1", "j2", "bob", limit=5, queue_size=1) is None  # j1 runs, 0 wait
    assert book.admit("p1", "j3", "alice", limit=1, queue_size=5) == ("user", 1)  # j1 counts


def test_slots_go_round_robin_between_users_across_processes():
    book = TurnBook(slots=1)
    book.ask("p1", ["alice"])
    [(_, first, user)] = book.grant()
    assert user == "alice"
    book.ask("p2", ["alice", "bob"])  # p2's own order puts alice first...
    assert book.grant() == []  # the one slot is taken
    book.ask("p1", ["alice"], ending=first)  # ...and p1 gives its slot back while asking again
    [(owner, _, user)] = book.grant()
    assert (owner, user) == ("p2", "bob")  # bob was never served; alice was
    assert book.requests == {"p1": (3, ["alice"])}


def test_riders_count_as_served():
    book = TurnBook(slots=1)
    for job, user in (("j1", "alice"), ("j2", "bob")):
        book.admit("p1", job, user, limit=5, queue_size=5)
    book.ask("p1", ["alice", "bob"])
    [(_, lease, _)] = book.grant()
    book.started(lease, ["j1", "j2"])  # bob's job shared alice's batch
    book.ask("p2", ["bob", "carol"], ending=lease)
    assert book.grant()[0][2] == "carol"


def test_a_silent_process_loses_its_slots_and_jobs():
    clock = Clock()
    book = TurnBook(slots=1, lease_s=30, clock=clock)
    book.admit("dead", "j1", "alice", limit=1, queue_size=5)
    book.ask("dead", ["alice"])
    assert book.grant()
    book.ask("alive", ["bob"])
    assert book.grant() == []
    clock.now += 20
    book.heard("alive")  # its beat
    clock.now += 15
    assert book.expire() == ["dead"]
    assert book.grant()[0][:1] == ("alive",)
    assert book.admit("alive", "j2", "alice", limit=1, queue_size=5) is None


def test_a_process_dropped_while_alive_tells_its_jobs_and_slot_again():
    clock = Clock()
    book = TurnBook(slots=1, lease_s=30, clock=clock)
    book.admit("slow", "j1", "alice", limit=2, queue_size=5)
    book.ask("slow", ["alice"])
    [(_, lease, _)] = book.grant()
    book.started(lease, ["j1"])
    clock.now += 31  # it stalled
    assert book.expire() == ["slow"]
    book.admit("slow", "j2", "alice", limit=2, queue_size=5)  # not yet in what it tells:
    book.rejoin("slow", {"j1": "alice"}, {lease: ("alice", ["j1"])})
    assert book.processes["slow"].jobs == {"j1": "alice", "j2": "alice"}  # merged, not replaced
    assert book.admit("other", "j3", "alice", limit=2, queue_size=5) == ("user", 2)
    assert book.leases[lease].owner == "slow" and book.processes["slow"].running == {"j1"}
    book.ask("other", ["bob"])
    assert book.grant() == []  # the slot is held again
    book.end(lease)
    assert book.grant()[0][2] == "bob"


def test_withdrawing_a_request_leaves_the_slot_to_others():
    book = TurnBook(slots=1)
    book.ask("p0", ["carol"])
    [(_, held, _)] = book.grant()
    book.ask("p1", ["alice"])
    book.ask("p2", ["bob"])
    assert not book.update("p1", [])  # every job of p1 was cancelled while it waited
    book.end(held)
    assert [grant[0] for grant in book.grant()] == ["p2"]


async def test_the_actor_answers_a_waiting_turn_when_a_slot_frees():
    actor = AdmissionActor(slots=1, lease_s=30)
    await actor.join("p1", 1)
    first = await actor.turn("p1", ["alice"])
    waiting = asyncio.ensure_future(actor.turn("p2", ["bob"]))
    await asyncio.sleep(0)
    assert not waiting.done()
    await actor.end(first[0])
    assert (await asyncio.wait_for(waiting, 5))[1] == "bob"
    withdrawn = asyncio.ensure_future(actor.turn("p1", ["alice"]))
    await asyncio.sleep(0)
    await actor.update("p1", [])
    assert await asyncio.wait_for(withdrawn, 5) is None


async def test_the_actor_frees_the_slot_of_a_process_that_stopped_beating():
    actor = AdmissionActor(slots=1, lease_s=0.2)
    await actor.join("dead", 1)
    await actor.turn("dead", ["alice"])
    waiting = asyncio.ensure_future(actor.turn("alive", ["bob"]))
    while not waiting.done():  # "alive" beats; "dead" does not
        await actor.beat("alive")
        await asyncio.wait({waiting}, timeout=0.05)
    assert waiting.result()[1] == "bob"
    assert "dead" not in (await actor.snapshot())["jobs"]
    assert await actor.beat("dead") is False  # had it only stalled, it would now rejoin
    assert await actor.beat("dead") is True


def test_admission_follows_the_engine_unless_named(tmp_path):
    base = dict(home=tmp_path, device="cpu")
    assert isinstance(make_admission(EngineSettings(**base)), LocalAdmission)
    assert isinstance(make_admission(EngineSettings(**base, engine="ray")), RayAdmission)
    assert isinstance(make_admission(EngineSettings(**base, engine="ray", admission="local")),
                      LocalAdmission)
    assert isinstance(make_admission(EngineSettings(**base, admission="ray")), RayAdmission)


@pytest.mark.parametrize("value", ["yes", "redis"])
def test_an_unknown_admission_is_refused(tmp_path, value):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="admission"):
        EngineSettings(home=tmp_path, admission=value)
