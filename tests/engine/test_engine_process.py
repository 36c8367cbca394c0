"""The engine process: jobs cross it intact, and when it dies for real the bot does not.

These tests kill a real engine process (SIGKILL from outside, os.abort() inside a method,
a method exhausting an address-space limit, a method that hangs) and check that the queue,
the event loop and other users' jobs carry on, and what /healthz would show.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.backends.process import ProcessBackend
from engine.engine import StyleEngine
from engine.events import Cancelled, Done, Failed, Progress
from engine.queue import JobQueue
from engine.settings import EngineSettings
from tests.engine.conftest import toy_request

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX signals and rlimits")


@pytest.fixture
def crash_methods(toy_methods, monkeypatch):
    from engine import methods

    monkeypatch.setitem(methods.METHOD_PATHS, "toycrash", "tests.engine.toy_methods:ToyCrash")
    methods.get_method.cache_clear()
    toy_methods.CRASHES.clear()
    return toy_methods


@pytest.fixture
async def make_queue(tmp_path, crash_methods):
    """A queue whose engine runs in a real engine process, restarting without delay."""
    queues = []

    async def factory(device="cpu", restart_delay_s=0.0, kill_grace_s=0.5, **overrides):
        settings = EngineSettings(home=tmp_path, device=device, weights_dir=None,
                                  allow_downloads=False, engine_process="child", **overrides)
        engine = StyleEngine(settings, device="cpu")
        backend = ProcessBackend(engine, restart_delay_s=restart_delay_s, kill_grace_s=kill_grace_s)
        queue = JobQueue(engine, backend=backend)
        await queue.start()
        queues.append(queue)
        return queue

    yield factory
    for queue in queues:
        crash_methods.GATE.set()
        await queue.stop(grace_s=1)


class Ticker:
    """Counts event-loop turns while a test runs: a crash must not stall the loop."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.01)

    def stop(self) -> int:
        self._task.cancel()
        return self.ticks


async def _stages(handle) -> list[str]:
    return [e.stage async for e in handle.events() if isinstance(e, Progress)]


async def until(condition, timeout=60.0):
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_engine_process_carries_progress_previews_results_and_errors(make_queue):
    queue = await make_queue()
    assert queue.backend.health()["state"] == "ready"
    assert queue.backend.pid not in (None, os.getpid())
    preview = await queue.submit(toy_request("a", method="toypreview", steps=3))
    refused = await queue.submit(toy_request("b", dims=(11, 11), fail="user"))
    bug = await queue.submit(toy_request("c", dims=(12, 12), fail="bug"))
    events = [e async for e in preview.events()]
    previews = [e.preview.size for e in events if isinstance(e, Progress) and e.preview]
    assert previews and set(previews) == {(32, 24)}
    assert isinstance(events[-1], Done) and events[-1].image.getpixel((0, 0)) == (55, 225, 225)
    refused_final, bug_final = await refused.wait(), await bug.wait()
    assert isinstance(refused_final, Failed) and refused_final.message == "toy says no"
    assert bug_final.internal and bug.id in bug_final.message and "toy bug" in bug_final.detail
    assert queue.backend.restarts == 0  # errors in a method are not crashes


async def test_engine_process_sigkill_mid_job_retries_it_and_queued_jobs_complete(make_queue, crash_methods):
    queue = await make_queue()
    ticker = Ticker()
    first_pid = queue.backend.pid
    crash_methods.GATE.clear()
    running = await queue.submit(toy_request("ann", tag="running", wait=True))
    told = asyncio.create_task(_stages(running))
    await until(lambda: crash_methods.RAN == ["running"])  # inside the method, at the gate
    queued = [await queue.submit(toy_request(user, dims=(10 + i, 10), tag=user))
              for i, user in enumerate(("bob", "cy"))]
    os.kill(first_pid, signal.SIGKILL)  # an operator, or the kernel's OOM killer
    await until(lambda: queue.backend.restarts == 1)
    assert all(job.state == "queued" for job in queued)
    crash_methods.GATE.set()
    finals = [await h.wait() for h in (running, *queued)]
    assert all(isinstance(f, Done) for f in finals), finals
    assert crash_methods.RAN == ["running", "running", "bob", "cy"]  # run once more, then the rest
    assert ticker.stop() > 10  # the loop kept serving throughout
    health = queue.backend.health()
    assert health["state"] == "ready" and health["restarts"] == 1
    assert "SIGKILL" in health["last_crash"] and health["pid"] not in (None, first_pid)
    assert "The engine restarted after a crash; running your job again" in await told


async def test_crash_by_abort_twice_refuses_the_job_and_others_survive(make_queue, crash_methods):
    queue = await make_queue()
    ticker = Ticker()
    crasher = await queue.submit(toy_request("mallory", method="toycrash", how="abort"))
    other = await queue.submit(toy_request("bob", dims=(10, 10)))
    final = await crasher.wait()
    assert isinstance(final, Failed) and not final.internal
    assert final.message.startswith("This job crashed the style engine twice (last time: aborted by SIGABRT")
    assert "\n" not in final.message
    assert isinstance(await other.wait(), Done)
    assert crash_methods.CRASHES == ["abort", "abort"]  # retried once, then not again
    assert queue.backend.restarts == 2 and "SIGABRT" in queue.backend.last_crash
    # The same job sent again is refused without taking the engine down a third time.
    again = await queue.submit(toy_request("mallory", method="toycrash", how="abort"))
    final = await again.wait()
    assert isinstance(final, Failed) and "crashed the style engine twice before" in final.message
    assert crash_methods.CRASHES == ["abort", "abort"] and queue.backend.restarts == 2
    assert ticker.stop() > 10


async def test_crash_once_then_the_retry_succeeds(make_queue, crash_methods):
    queue = await make_queue()
    handle = await queue.submit(toy_request("ann", method="toycrash", how="abort", times=1))
    assert isinstance(await handle.wait(), Done)
    assert crash_methods.CRASHES == ["abort"] and queue.backend.restarts == 1


async def test_crash_by_running_out_of_memory_under_an_address_space_limit(make_queue, crash_methods):
    queue = await make_queue()
    crasher = await queue.submit(toy_request("mallory", method="toycrash", how="memory"))
    other = await queue.submit(toy_request("bob", dims=(10, 10)))
    final = await crasher.wait()
    assert isinstance(final, Failed) and "twice (last time: ran out of memory: MemoryError)" in final.message
    assert isinstance(await other.wait(), Done)
    assert crash_methods.CRASHES == ["memory", "memory"]
    assert queue.backend.health()["last_crash"] == "ran out of memory: MemoryError"


async def test_a_hung_engine_process_is_killed_at_the_timeout_and_restarted(make_queue, crash_methods):
    queue = await make_queue(job_timeout_s=1.0, kill_grace_s=0.3)
    hung = await queue.submit(toy_request("ann", method="toycrash", how="hang"))
    final = await hung.wait()
    assert isinstance(final, Failed) and "limit" in final.message and hung.id in final.message
    # A job's time limit counts waiting for a restart, which takes longer than this test's
    # 1 s limit: send the next job once the engine is back.
    await until(lambda: queue.backend.state == "ready")
    after = await queue.submit(toy_request("bob", dims=(10, 10)))
    assert isinstance(await after.wait(), Done)
    assert crash_methods.CRASHES == ["hang"]  # a timed-out job is not run again
    assert queue.backend.restarts == 1 and queue.backend.last_crash.startswith("hung:")


async def test_cancelling_a_job_whose_engine_hangs_kills_the_engine_process(make_queue, crash_methods):
    queue = await make_queue(kill_grace_s=0.3)
    hung = await queue.submit(toy_request("ann", method="toycrash", how="hang"))
    await until(lambda: crash_methods.CRASHES == ["hang"])  # asleep inside the method
    assert hung.cancel()
    final = await hung.wait()
    assert isinstance(final, Cancelled) and final.reason == "cancelled by the requester"
    await until(lambda: queue.backend.state == "ready")
    assert queue.backend.restarts == 1 and queue.backend.last_crash.startswith("hung:")
    assert isinstance(await (await queue.submit(toy_request("bob"))).wait(), Done)


async def test_an_engine_process_that_cannot_start_is_down_and_jobs_are_refused(make_queue):
    # The bot's side has a CPU; the engine process is given a device that does not exist.
    queue = await make_queue(device="tpu", restart_delay_s=60)
    health = queue.backend.health()
    assert health["state"] == "down" and health["pid"] is None
    assert "could not start" in health["last_crash"] and "'tpu'" in health["last_crash"]
    handle = await queue.submit(toy_request("ann"))
    final = await handle.wait()
    assert isinstance(final, Failed) and "not running right now" in final.message


def test_engine_process_restart_delays_double_up_to_the_cap():
    settings = EngineSettings(device="cpu", weights_dir=None, allow_downloads=False)
    backend = ProcessBackend(StyleEngine(settings, device="cpu"), restart_delay_s=0.5,
                             max_restart_delay_s=30)
    delays = []
    for crashes in range(1, 9):
        backend._crashes_in_a_row = crashes
        delays.append(backend._backoff())
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30]


BOT_SCRIPT = """
import asyncio, sys, threading
from PIL import Image
from engine.backends.process import ProcessBackend
from engine.engine import PreparedJob, StyleEngine
from engine.methods.base import MethodInput
from engine.settings import EngineSettings
from tests.engine.toy_methods import CRASHES, ToyCrash

async def main():
    settings = EngineSettings(home=sys.argv[1], device="cpu", weights_dir=None, allow_downloads=False)
    backend = ProcessBackend(StyleEngine(settings, device="cpu"))
    await backend.start()
    options = {"how": "hang", "times": 0, "size": None, "seed": 0}
    job = PreparedJob(ToyCrash(), MethodInput(Image.new("RGB", (8, 8)), options, 0, 8), None)
    running = asyncio.ensure_future(backend.run([job], lambda *a: None, threading.Event()))
    while not len(CRASHES):
        await asyncio.sleep(0.02)
    print(backend.pid, flush=True)  # hanging inside the method now
    await running

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_engine_process_dies_with_the_bot(tmp_path):
    """A bot killed outright (no clean stop) mid-batch leaves no engine process holding the GPU."""
    state = tmp_path / "toys"
    state.mkdir()
    bot = subprocess.Popen([sys.executable, "-c", BOT_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO), "STYLEBOT_TOY_STATE": str(state)})
    try:
        engine_pid = int(bot.stdout.readline())
        assert _alive(engine_pid)
        bot.kill()
        bot.wait(30)
        for _ in range(500):
            if not _alive(engine_pid):
                break
            time.sleep(0.02)
        assert not _alive(engine_pid)
    finally:
        bot.kill()
        bot.stdout.close()


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent to reap it."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"
