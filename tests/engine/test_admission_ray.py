"""Fairness across bot processes: two real bot processes (tests/engine/bot_process.py), each
with its own event loop and queue, share one admission actor on one real local Ray."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from engine.admission import ACTOR_NAME, NAMESPACE

pytestmark = pytest.mark.slow  # about a minute: one Ray, six bot processes

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 90.0  # generous: the machine is shared; nothing here measures time


@pytest.fixture(scope="session")
def ray_address(ray_cluster):
    """The session's one local Ray (tests/conftest.py); bot processes join it by its GCS address."""
    return ray_cluster.get_runtime_context().gcs_address


@pytest.fixture
def admission_actor(ray_address):
    """The shared actor's state as the test sees it; a fresh actor for every test."""
    import ray

    def kill():
        try:
            ray.kill(ray.get_actor(ACTOR_NAME, namespace=NAMESPACE))
        except ValueError:  # no such actor yet
            pass

    async def snapshot() -> dict:
        actor = ray.get_actor(ACTOR_NAME, namespace=NAMESPACE)
        return await asyncio.to_thread(ray.get, actor.snapshot.remote())

    kill()
    yield snapshot
    kill()


class Bot:
    """A running bot process, spoken to in JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.unread: list[dict] = []

    async def send(self, **command) -> None:
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()

    async def expect(self, **wanted) -> dict:
        """The first message (read now or earlier) carrying every item of ``wanted``."""
        while True:
            for message in self.unread:
                if wanted.items() <= message.items():
                    self.unread.remove(message)
                    return message
            line = await asyncio.wait_for(self.process.stdout.readline(), WAIT_S)
            if not line:
                raise AssertionError(f"bot process ended waiting for {wanted}; "
                                     f"stderr: {(await self.process.stderr.read()).decode()[-3000:]}")
            self.unread.append(json.loads(line))

    async def submit(self, user: str, tag: str, **extra) -> dict:
        await self.send(submit=user, tag=tag, **extra)
        while True:
            for message in self.unread:
                if message.get("queued") == tag or "refused" in message:
                    self.unread.remove(message)
                    return message
            await self.expect_any()

    async def expect_any(self) -> None:
        line = await asyncio.wait_for(self.process.stdout.readline(), WAIT_S)
        if not line:
            raise AssertionError("bot process ended; stderr: "
                                 f"{(await self.process.stderr.read()).decode()[-3000:]}")
        self.unread.append(json.loads(line))


@pytest.fixture
async def start_bots(ray_address, admission_actor, tmp_path):
    bots: list[Bot] = []
    run_log = tmp_path / "ran.txt"
    run_log.touch()

    async def start(n: int, **settings) -> list[Bot]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEBOT_")}
        env.update(PYTHONPATH=str(REPO), STYLEBOT_HOME=str(tmp_path / "home"), STYLEBOT_DEVICE="cpu",
                   STYLEBOT_ALLOW_DOWNLOADS="false", STYLEBOT_ADMISSION="ray",
                   STYLEBOT_RAY_ADDRESS=ray_address,
                   **{f"STYLEBOT_{k.upper()}": str(v) for k, v in settings.items()})
        started = []
        for _ in range(n):
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(REPO / "tests" / "engine" / "bot_process.py"), str(run_log),
                cwd=REPO, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            started.append(Bot(process))
        bots.extend(started)
        for bot in started:
            await bot.expect(ready=True)
        return started

    start.ran = lambda: run_log.read_text().split()
    yield start
    for bot in bots:
        if bot.process.returncode is None:
            try:
                await bot.send(quit=True)
                await asyncio.wait_for(bot.process.wait(), 30)
            except (OSError, asyncio.TimeoutError):
                bot.process.kill()
                await bot.process.wait()


async def until(snapshot, condition, what: str) -> dict:
    """Poll the actor until ``condition(state)``; counts calls, not seconds, to decide."""
    for _ in range(int(WAIT_S / 0.05)):
        state = await snapshot()
        if condition(state):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"the admission actor never showed {what}: {state}")


async def test_ray_per_user_limit_holds_across_two_bot_processes(start_bots, admission_actor):
    first, second = await start_bots(2, jobs_per_user=2)
    assert (await first.submit("alice", "a1", wait=True)) == {"queued": "a1"}
    assert (await first.submit("alice", "a2", wait=True, side=17)) == {"queued": "a2"}
    refused = await second.submit("alice", "a3")
    assert refused == {"refused": "You already have 2 jobs queued or running (the limit is 2); "
                                  "wait for one to finish or cancel one."}
    assert (await second.submit("bob", "b1")) == {"queued": "b1"}  # others are not held back
    await first.send(open=True)
    await first.expect(ended="a1")
    await first.expect(ended="a2")
    await until(admission_actor,
                lambda s: "test:alice" not in [u for jobs in s["jobs"].values() for u in jobs.values()],
                "alice's jobs forgotten")
    assert (await second.submit("alice", "a4")) == {"queued": "a4"}
    await second.expect(ended="a4")


async def test_ray_turns_go_round_robin_between_users_across_processes(start_bots,
                                                                       admission_actor):
    """One slot; alice floods both processes, bob sends one job to the second after alice
    asked there: bob's job runs before alice's later ones."""
    first, second = await start_bots(2, jobs_per_user=3, admission_slots=1)
    await first.submit("alice", "a1", wait=True)
    await first.expect(started="a1")  # alice holds the one slot
    await first.submit("alice", "a2", side=17)
    await second.submit("alice", "a3", side=18)
    await second.submit("bob", "b1", side=19)
    await until(admission_actor, lambda s: ["test:alice", "test:bob"] in s["requests"].values(),
                "the second process asking for alice and bob")
    await first.send(open=True)
    for bot, tag in ((first, "a1"), (second, "b1"), (first, "a2"), (second, "a3")):
        assert (await bot.expect(ended=tag))["as"] == "Done"
    assert start_bots.ran() == ["a1", "b1", "a2", "a3"]


async def test_ray_a_dead_process_does_not_keep_its_slot_or_its_jobs(start_bots, admission_actor):
    first, second = await start_bots(2, jobs_per_user=1, admission_slots=1, admission_lease_s=5)
    await first.submit("alice", "a1", wait=True)
    await first.expect(started="a1")
    await second.submit("bob", "b1")
    await until(admission_actor, lambda s: ["test:bob"] in s["requests"].values(), "bob waiting")
    first.process.send_signal(signal.SIGKILL)  # no goodbye: only its missing beats tell
    await first.process.wait()
    assert (await second.expect(ended="b1"))["as"] == "Done"
    assert (await second.submit("alice", "a2")) == {"queued": "a2"}  # a1 counts no more
    await second.expect(ended="a2")
    assert start_bots.ran() == ["a1", "b1", "a2"]
