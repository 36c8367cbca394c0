"""Background training yields the device: a stylize job waits for at most one training step.

A real ``JobQueue`` and ``StyleEngine`` run a recording method while a tiny real network
trains (an Adam step on a linear layer), one background turn per step, as /train does:
``inline`` on a thread of this process, ``child`` in a training process of its own that
asks this process for each turn (``engine.training.child``), with the queue's methods in
an engine process too. Everything is counted in steps and events, never in seconds; the
log is kept in a file so every process writes to the same one.
"""

from __future__ import annotations

import asyncio
import os
import threading
from contextlib import nullcontext
from pathlib import Path

import pytest

from engine import methods
from engine.errors import JobCancelled
from engine.events import Done
from engine.methods.base import Method, MethodInput, RunContext
from engine.options import SEED, Option, OptionSet
from engine.queue import JobQueue
from engine.device_turns import DeviceTurns
from tests.engine.conftest import toy_request
from tests.engine.shared_state import SharedGate, SharedList
from tests.engine.toy_methods import _STATE  # noqa: F401 - makes STYLEBOT_TOY_STATE for children

STATE = Path(os.environ["STYLEBOT_TOY_STATE"])
LOG = SharedList(STATE / "turns-log")  # [what, step] entries, from every process, in order
STOP = SharedGate(STATE / "trainer-running")  # set: the tiny trainer stops after its step
HOLD = STATE / "hold-a-step"  # present: the next step holds its turn until a job is queued
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


def tiny_train(config, settings, *, out_dir=None, turn=nullcontext, on_step=None):
    """A trainer with ``engine.training.fast.train``'s signature: Adam steps on a linear
    layer, each under ``turn()``, until ``STOP`` is set."""
    import torch

    net = torch.nn.Linear(16, 16)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    step = 0
    while not STOP.is_set():
        with turn():
            step += 1
            record("step-start", step)
            x = torch.randn(32, 16)
            loss = ((net(x) - x) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if HOLD.exists():
                HOLD.unlink()
                linger_until_a_job_is_queued(step)
            record("step-end", step)
        if on_step is not None:
            on_step(step, 10**9)

    class Result:
        pass

    result = Result()
    result.step = step
    return result


def linger_until_a_job_is_queued(step: int) -> None:
    """Keep the step on the device until the test has queued a job, then a while longer:
    time enough for the job to start if anything let it in while a step holds the device
    (the wait is a bound for that failure, never something a passing run measures)."""
    import time

    record("holding", step)
    while not any(what == "enqueued" for what, _ in LOG):
        time.sleep(0.005)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and not any(what == "job-start" for what, _ in LOG):
        time.sleep(0.01)


def tiny_trainer(mode: str, turns: DeviceTurns, started: threading.Event, settings,
                 monkeypatch) -> threading.Thread:
    """Run ``tiny_train`` as /train would (``mode``: inline or child) until ``STOP``."""
    from engine.training import child
    from engine.training.fast import TrainConfig

    def on_step(step: int, total: int) -> None:
        if step == 3:
            started.set()

    def loop() -> None:
        try:
            if mode == "inline":
                tiny_train(None, settings, turn=turns.background, on_step=on_step)
            else:
                config = TrainConfig(style=Path("unused.png"), images=Path("unused"), name="tiny")
                child.train_in_process(config, settings, settings.home, turns=turns,
                                       cancel=threading.Event(), on_step=on_step, label="tiny")
        except JobCancelled:
            record("cancelled")

    STOP.clear()
    HOLD.unlink(missing_ok=True)
    monkeypatch.setattr(child, "TRAINER", "tests.engine.test_turns_train:tiny_train")
    thread = threading.Thread(target=loop, name="tiny-trainer", daemon=True)
    thread.start()
    return thread


async def open_queue(mode: str, settings):
    """A started queue whose methods run inline or in an engine process."""
    from engine.backends.process import ProcessBackend
    from engine.engine import StyleEngine

    engine = StyleEngine(settings, device="cpu")
    backend = ProcessBackend(engine, restart_delay_s=0.0) if mode == "child" else None
    queue = JobQueue(engine, backend=backend)
    await queue.start()
    return engine, queue


def between(first: str, last: str) -> list[tuple[str, int]]:
    log = LOG.items()
    names = [what for what, _ in log]
    return log[names.index(first) + 1:names.index(last)]


MODES = ["inline", "child"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_stylize_job_waits_for_at_most_one_training_step(settings, recorder, mode,
                                                                 monkeypatch):
    engine, queue = await open_queue(mode, settings)
    started = threading.Event()
    trainer = tiny_trainer(mode, engine.turns, started, settings, monkeypatch)
    try:
        assert await asyncio.to_thread(started.wait, 30)
        handle = await queue.submit(toy_request(method="recorder", steps=20))
        record("enqueued")  # the job is in the queue: no training step may start from here
        assert isinstance(await handle.wait(), Done)
        resumed = len(LOG)
        while not any(what == "step-start" for what, _ in LOG[resumed:]):
            await asyncio.sleep(0.01)  # training goes on once the queue is empty
    finally:
        STOP.set()
        await asyncio.to_thread(trainer.join, 60)
        await queue.stop(grace_s=1)

    assert sum(what == "step-end" for what, _ in LOG[:[w for w, _ in LOG].index("enqueued")]) >= 3
    before_job = between("enqueued", "job-start")
    assert sum(what == "step-end" for what, _ in before_job) <= 1, before_job
    assert not [e for e in between("job-start", "job-end") if e[0].startswith("step")]
    assert LOG[-1][0] == "step-end"


@pytest.mark.parametrize("mode", MODES)
async def test_the_training_step_in_progress_ends_before_the_job_starts(settings, recorder, mode,
                                                                        monkeypatch):
    """The device is never shared: every step that began finished before the job began."""
    engine, queue = await open_queue(mode, settings)
    started = threading.Event()
    trainer = tiny_trainer(mode, engine.turns, started, settings, monkeypatch)
    try:
        assert await asyncio.to_thread(started.wait, 30)
        HOLD.touch()
        while not any(what == "holding" for what, _ in LOG):
            await asyncio.sleep(0.01)  # a step holds the device now
        handles = [await queue.submit(toy_request(method="recorder", user=f"u{i}", steps=5))
                   for i in range(3)]
        record("enqueued")
        for handle in handles:
            assert isinstance(await handle.wait(), Done)
    finally:
        STOP.set()
        await asyncio.to_thread(trainer.join, 60)
        await queue.stop(grace_s=1)
    assert LOG[-1][0] == "step-end"  # the trainer stopped on its own, not cancelled
    assert [what for what, _ in LOG].index("holding") < [what for what, _ in LOG].index("job-start")
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


async def test_a_batch_for_the_engine_process_waits_on_the_loop_and_a_cancel_frees_its_claim():
    """``interactive_on_loop``: waits for the step in progress without blocking the loop,
    stops new steps meanwhile, and a batch cancelled while waiting leaves nothing held."""
    turns = DeviceTurns()
    holding, release = threading.Event(), threading.Event()

    def step() -> None:
        with turns.background():
            holding.set()
            release.wait(30)

    trainer = threading.Thread(target=step, daemon=True)
    trainer.start()
    assert await asyncio.to_thread(holding.wait, 30)
    entered = []

    async def batch() -> None:
        async with turns.interactive_on_loop():
            entered.append(True)

    waiting = asyncio.create_task(batch())
    while not turns.interactive_pending():
        await asyncio.sleep(0.01)  # the loop keeps running while the batch waits
    assert not entered and turns.background_held
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not turns.interactive_pending()  # the cancelled batch holds no claim
    release.set()
    await asyncio.to_thread(trainer.join, 30)
    await batch()
    assert entered == [True] and not turns.interactive_pending()
