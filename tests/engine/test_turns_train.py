"""Background training yields the device: a stylize job waits for at most one training step.

A real ``JobQueue`` and ``StyleEngine`` run a recording method while a thread trains a tiny
real network (an Adam step on a linear layer), one background turn per step, as /train does.
Everything is counted in steps and events, never in seconds.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from engine import methods
from engine.errors import JobCancelled
from engine.events import Done
from engine.methods.base import Method, MethodInput, RunContext
from engine.options import SEED, Option, OptionSet
from engine.queue import JobQueue
from engine.device_turns import DeviceTurns
from tests.engine.conftest import toy_request

LOG: list[tuple[str, int]] = []
_LOCK = threading.Lock()


def record(what: str, n: int = 0) -> None:
    with _LOCK:
        LOG.append((what, n))


class Recorder(Method):
    """Notes when it holds the device; does a few real steps of work meanwhile."""

    name = "recorder"
    title = summary = "records when it runs"
    options = OptionSet([Option("steps", "int", 3, "work steps", min=1, max=100), SEED])

    def run(self, inp: MethodInput, ctx: RunContext):
        import torch

        record("job-start")
        for i in range(inp.options["steps"]):
            torch.randn(64, 64) @ torch.randn(64, 64)
            ctx.progress((i + 1) / inp.options["steps"])
        record("job-end")
        return inp.content


@pytest.fixture
def recorder(monkeypatch):
    monkeypatch.setitem(methods.METHOD_PATHS, "recorder", "tests.engine.test_turns_train:Recorder")
    methods.get_method.cache_clear()
    LOG.clear()
    yield
    methods.get_method.cache_clear()


def tiny_trainer(turns: DeviceTurns, stop: threading.Event, started: threading.Event,
                 cancel: threading.Event | None = None) -> threading.Thread:
    """Train a linear layer, one background turn per Adam step, until ``stop``."""
    import torch

    net = torch.nn.Linear(16, 16)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loop() -> None:
        step = 0
        try:
            while not stop.is_set():
                with turns.background(cancel):
                    step += 1
                    record("step-start", step)
                    x = torch.randn(32, 16)
                    loss = ((net(x) - x) ** 2).mean()
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    record("step-end", step)
                if step == 3:
                    started.set()
        except JobCancelled:
            record("cancelled", step)

    thread = threading.Thread(target=loop, name="tiny-trainer", daemon=True)
    thread.start()
    return thread


def between(first: str, last: str) -> list[tuple[str, int]]:
    names = [what for what, _ in LOG]
    return LOG[names.index(first) + 1:names.index(last)]


async def test_a_stylize_job_waits_for_at_most_one_training_step(settings, recorder):
    from engine.engine import StyleEngine

    engine = StyleEngine(settings, device="cpu")
    queue = JobQueue(engine)
    await queue.start()
    stop, started = threading.Event(), threading.Event()
    trainer = tiny_trainer(engine.turns, stop, started)
    try:
        assert await asyncio.to_thread(started.wait, 30)
        handle = await queue.submit(toy_request(method="recorder", steps=20))
        record("enqueued")  # the job is in the queue: no training step may start from here
        assert isinstance(await handle.wait(), Done)
        resumed = len(LOG)
        while not any(what == "step-start" for what, _ in LOG[resumed:]):
            await asyncio.sleep(0.01)  # training goes on once the queue is empty
    finally:
        stop.set()
        await asyncio.to_thread(trainer.join, 30)
        await queue.stop(grace_s=1)

    assert sum(what == "step-end" for what, _ in LOG[:[w for w, _ in LOG].index("enqueued")]) >= 3
    before_job = between("enqueued", "job-start")
    assert sum(what == "step-end" for what, _ in before_job) <= 1, before_job
    assert not [e for e in between("job-start", "job-end") if e[0].startswith("step")]
    assert LOG[-1][0] == "step-end"


async def test_the_training_step_in_progress_ends_before_the_job_starts(settings, recorder):
    """The device is never shared: every step that began finished before the job began."""
    from engine.engine import StyleEngine

    engine = StyleEngine(settings, device="cpu")
    queue = JobQueue(engine)
    await queue.start()
    stop, started = threading.Event(), threading.Event()
    trainer = tiny_trainer(engine.turns, stop, started)
    try:
        assert await asyncio.to_thread(started.wait, 30)
        handles = [await queue.submit(toy_request(method="recorder", user=f"u{i}", steps=5))
                   for i in range(3)]
        for handle in handles:
            assert isinstance(await handle.wait(), Done)
    finally:
        stop.set()
        await asyncio.to_thread(trainer.join, 30)
        await queue.stop(grace_s=1)
    holder = None
    for what, n in LOG:
        if what in ("step-start", "job-start"):
            assert holder is None, f"{what} while {holder} held the device"
            holder = what
        elif what in ("step-end", "job-end"):
            holder = None


def test_a_waiting_training_step_sees_queued_work_and_can_be_cancelled():
    turns = DeviceTurns()
    queued = {"jobs": 1}
    turns.watch(lambda: queued["jobs"] > 0)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(JobCancelled):
        with turns.background(cancel):
            pass  # pragma: no cover - never reached while a job is queued
    queued["jobs"] = 0
    with turns.background(cancel):
        assert not turns.interactive_pending()
