"""A training process that dies for real fails that training alone.

/train with ``engine_process=child`` runs the real tiny training of test_train_styles.py in a
process of its own; here that process is killed with SIGKILL from outside, aborts, or runs
out of memory under an address-space limit, inside the device turn of its second step. Its
user gets one line; the bot, its engine process, another user's stylize job and another
user's training (waiting in line behind it) all carry on, and no file is left behind.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.events import Done
from engine.training import child
from stylebot.service import StyleService
from stylebot.training_jobs import CRASHED, TrainingFailed, TrainingReady
from tests.stylebot.test_train_styles import ALICE, BOB, fast, first_step, style_upload, train_settings  # noqa: F401

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX signals and rlimits")

CRASH_AT_TURN = 3  # the first turn loads the loss network, the second is step 1


def crashing_train(config, settings, *, out_dir, turn, on_step):
    """The real trainer, ending its process inside the turn of step 2 as its style's name
    says: "abort-…" (os.abort), "memory-…" (past an address-space limit), "hang-…" (the
    test kills it); any other name trains normally."""
    from engine.training.fast import train

    how = (config.name or "").split("-")[0]
    turns = 0

    @contextmanager
    def crashing_turn():
        nonlocal turns
        with turn():
            turns += 1
            if turns == CRASH_AT_TURN:
                _crash(how)
            yield

    return train(config, settings, out_dir=out_dir, turn=crashing_turn, on_step=on_step)


def _crash(how: str) -> None:
    if how == "abort":
        os.abort()
    if how == "memory":
        _exhaust_memory()
    if how == "hang":
        while True:
            time.sleep(1)


def _exhaust_memory() -> None:
    """Cap this process's address space a little above what it uses, then allocate past it."""
    import resource

    status = Path("/proc/self/status").read_text()
    used_kb = int(next(line for line in status.splitlines() if line.startswith("VmSize:")).split()[1])
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (used_kb * 1024 + 256 * 2**20, hard))
    hoard = []
    while True:
        hoard.append(bytearray(32 * 2**20))


async def until(condition, timeout=120.0):
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def training_process(handle) -> multiprocessing.Process:
    [process] = [p for p in multiprocessing.active_children()
                 if p.name == f"stylebot-train-{handle.id}"]
    return process


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigkill", "abort", "memory"])
async def test_a_training_process_that_crashes_fails_that_training_alone(
        train_settings, shared_weights, monkeypatch, how):  # noqa: F811
    monkeypatch.setattr(child, "TRAINER", "tests.stylebot.test_train_crash:crashing_train")
    service = await StyleService.open(train_settings.model_copy(update={"engine_process": "child"}))
    try:
        backend = service.queue.backend
        engine_pid = backend.pid
        assert engine_pid not in (None, os.getpid())
        handle = await service.train(ALICE, style_upload(), f"{'hang' if how == 'sigkill' else how}-x")
        bobs = await service.train(BOB, style_upload(), "fine")  # waits in line behind Alice's
        if how == "sigkill":
            await first_step(handle)
            await until(lambda: service.engine.turns.background_held)  # step 2 holds the device
            os.kill(training_process(handle).pid, signal.SIGKILL)
        final = await handle.wait()
        assert final == TrainingFailed(CRASHED.format(id=handle.id), internal=True)
        assert final.message.startswith("Your training stopped unexpectedly") and "\n" not in final.message
        assert service.trainings.running(ALICE) is None

        # The device turn the dead process held is free: a stylize job and the next
        # training in line both run to the end.
        done = await (await service.submit(fast(BOB, "mosaic"))).wait()
        assert isinstance(done, Done)
        assert await bobs.wait() == TrainingReady("fine", 3)
        assert service.trained_styles(BOB) == ["fine"]

        # The engine process was never touched; nothing of Alice's training is left.
        health = backend.health()
        assert health["pid"] == engine_pid and health["restarts"] == 0
        folder = service.trained.folder(ALICE)
        assert not folder.exists() or sorted(p.name for p in folder.iterdir()) == []
        assert not [p for p in multiprocessing.active_children()
                    if p.name.startswith("stylebot-train-")]
    finally:
        await service.close(grace_s=1)
