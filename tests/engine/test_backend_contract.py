"""The backend contract: a queue behaves the same whichever backend runs its batches.

Every test runs against ``local`` (a thread of this process), ``child`` (the local
backend's default: the engine process, ``engine/backends/process.py``) and ``ray`` (real
Ray Serve replicas in other processes, started once per session). The toy method used,
``toyportable``, takes every behaviour from its options, so it acts the same in a replica.
"""

from __future__ import annotations

import asyncio

import pytest

from engine.engine import StyleEngine
from engine.events import Cancelled, Done, Failed, Progress, Queued, Started
from engine.queue import JobQueue
from engine.request import ImageUpload
from engine.settings import EngineSettings
from tests.engine.conftest import png_bytes, toy_request

# Two replicas, so a replica that dies has a peer to retry on while Serve replaces it.
RAY_SETTINGS = {"engine": "ray", "ray_min_replicas": 2, "ray_max_replicas": 2,
                "ray_cpus_per_replica": 0.5}
INVERTED = (55, 225, 225)  # toy_request's (200, 30, 30), inverted


@pytest.fixture(scope="session")
def ray_backend(ray_cluster, tmp_path_factory):
    """One Serve application for every ray case: deploying costs seconds, so it is shared."""
    from engine.backends.ray import RayBackend

    settings = EngineSettings(home=tmp_path_factory.mktemp("ray-home"), device="cpu",
                              weights_dir=None, allow_downloads=False, **RAY_SETTINGS)
    backend = RayBackend(StyleEngine(settings, device="cpu"))
    asyncio.run(backend.start())
    return backend


@pytest.fixture(params=["local", "child", pytest.param("ray", marks=pytest.mark.ray)])
def backend(request):
    """The Ray backend, or the local backend's mode (the queue makes that one itself)."""
    return request.getfixturevalue("ray_backend") if request.param == "ray" else request.param


@pytest.fixture
async def make_queue(tmp_path, portable_toy, backend):
    queues = []

    async def factory(**overrides):
        local = isinstance(backend, str)
        mode = {"engine_process": "child" if backend == "child" else "inline"} if local else {}
        settings = EngineSettings(home=tmp_path, device="cpu", weights_dir=None,
                                  allow_downloads=False, **mode, **overrides)
        queue = JobQueue(StyleEngine(settings, device="cpu"), backend=None if local else backend)
        await queue.start()
        queues.append(queue)
        return queue

    yield factory
    for queue in queues:
        await queue.stop(grace_s=1)


def portable(user="u1", dims=(32, 24), **options):
    return toy_request(user, method="toyportable", dims=dims, **options)


async def collect(handle):
    return [event async for event in handle.events()]


async def first_progress(handle):
    async for event in handle.events():
        if isinstance(event, (Progress, Done, Failed, Cancelled)):
            return event
    raise AssertionError("no event")  # pragma: no cover


async def until_file(folder, pattern, timeout=30.0):
    for _ in range(int(timeout / 0.05)):
        found = sorted(folder.glob(pattern))
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {pattern} in {folder}")


async def test_a_job_runs_to_done_with_progress_in_order(make_queue):
    queue = await make_queue()
    handle = await queue.submit(portable(steps=4, delay=0.05))
    events = await collect(handle)
    assert isinstance(events[0], Queued) and isinstance(events[1], Started)
    progress = [e.fraction for e in events if isinstance(e, Progress)]
    assert progress and progress == sorted(progress)
    done = events[-1]
    assert isinstance(done, Done) and done.image.getpixel((0, 0)) == INVERTED
    assert done.meta.method == "toyportable" and done.meta.size == (32, 24)
    assert done.meta.device == queue.backend.device
    health = queue.backend.health()  # what /healthz shows under "engine"
    assert health["backend"] == queue.backend.name and health["state"] in ("ready", "running")


async def test_cancel_stops_the_running_method_between_steps(make_queue, tmp_path):
    queue = await make_queue()
    marker = tmp_path / "marker"
    marker.mkdir()
    handle = await queue.submit(portable(steps=300, delay=0.02, marker=str(marker)))
    assert isinstance(await first_progress(handle), Progress)  # it is running on its worker
    assert handle.cancel()
    assert isinstance(await handle.wait(), Cancelled)
    stopped = await until_file(marker, "stopped-after-*")  # the method itself saw the cancel
    assert int(stopped[0].name.rsplit("-", 1)[1]) < 300


async def test_same_key_jobs_run_as_one_batch_with_a_result_each(make_queue):
    queue = await make_queue(max_batch=3)
    colours = [(200, 30, 30), (10, 100, 250), (0, 0, 0)]
    prepared = []
    for i, colour in enumerate(colours):
        request = portable(f"user{i}", steps=2)
        request.content = ImageUpload(png_bytes((16, 16), colour), "c.png")
        prepared.append(queue.engine.prepare(request))
    handles = [await queue.enqueue(p) for p in prepared]  # no await yields: one batch
    finals = await asyncio.gather(*[h.wait() for h in handles])
    for colour, final in zip(colours, finals):
        assert isinstance(final, Done)
        assert final.image.getpixel((0, 0)) == tuple(255 - c for c in colour)
    for handle in handles:
        stages = {e.stage for e in await collect(handle) if isinstance(e, Progress)}
        assert stages == {"batch of 3"}


async def test_jobs_go_to_the_worker_that_already_holds_their_weights(make_queue):
    queue = await make_queue()

    async def worker_of(user):
        handle = await queue.submit(portable(user, steps=1, report_pid=True))
        assert isinstance(await handle.wait(), Done)
        [stage] = {e.stage for e in await collect(handle) if isinstance(e, Progress)}
        return stage

    # Serve prefers a free replica over a busy holder; a replica counts a finished request
    # as ongoing for a moment, so each job waits for the previous one to clear first.
    workers = []
    for i in range(5):
        workers.append(await worker_of(f"u{i}"))
        await asyncio.sleep(0.5)
    assert workers == [workers[0]] * 5


async def test_out_of_memory_retries_smaller_then_fails_only_that_job(make_queue):
    queue = await make_queue()
    retried = await queue.submit(portable("a", oom_above=25))  # 32 px fails, 22 px fits
    final = await retried.wait()
    assert isinstance(final, Done) and max(final.image.size) == 22
    failing = await queue.submit(portable("b", oom_above=5))  # even the retry is too big
    fine = await queue.submit(portable("c", dims=(12, 12)))
    failed = await failing.wait()
    assert isinstance(failed, Failed) and "ran out of memory" in failed.message
    assert isinstance(await fine.wait(), Done)


async def test_a_refusal_reaches_the_user_and_a_bug_is_logged_not_shown(make_queue, caplog):
    queue = await make_queue()
    refused = await queue.submit(portable("a", fail="user"))
    bug = await queue.submit(portable("b", dims=(11, 11), fail="bug"))
    refused_final, bug_final = await refused.wait(), await bug.wait()
    assert isinstance(refused_final, Failed) and refused_final.message == "toy says no"
    assert not refused_final.internal
    assert isinstance(bug_final, Failed) and bug_final.internal
    assert bug.id in bug_final.message and "toy bug" not in bug_final.message
    assert "RuntimeError: toy bug" in bug_final.detail
    failure = next(r for r in caplog.records if r.levelname == "ERROR" and bug.id in r.getMessage())
    assert "toy_methods.py" in caplog.text and failure.exc_info is not None  # where it was raised


async def test_a_job_past_the_time_limit_fails_and_the_next_still_runs(make_queue, tmp_path):
    queue = await make_queue(job_timeout_s=1.0)
    marker = tmp_path / "marker"
    marker.mkdir()
    slow = await queue.submit(portable("a", steps=500, delay=0.02, marker=str(marker)))
    fine = await queue.submit(portable("b", dims=(10, 10)))
    final = await slow.wait()
    assert isinstance(final, Failed) and "limit" in final.message and slow.id in final.message
    assert isinstance(await fine.wait(), Done)
    await until_file(marker, "stopped-after-*")  # the method was stopped, not abandoned


@pytest.mark.parametrize("backend", [
    pytest.param("local", marks=pytest.mark.skip(
        reason="inline, the local backend runs methods in this process: a method that kills its process "
               "kills the bot, so there is no worker to lose and retry (see the raising-method "
               "case above for what local does with a failing method)")),
    "child", pytest.param("ray", marks=pytest.mark.ray)], indirect=True)
async def test_a_worker_that_dies_is_retried_once_then_fails_clearly(make_queue, tmp_path, backend):
    queue = await make_queue()
    once, twice = tmp_path / "once", tmp_path / "twice"
    once.mkdir()
    twice.mkdir()
    survived = await queue.submit(portable("a", crashes=1, marker=str(once)))
    final = await survived.wait()
    assert isinstance(final, Done) and final.image.getpixel((0, 0)) == INVERTED
    assert len(list(once.glob("died-*"))) == 1
    lost = await queue.submit(portable("b", dims=(12, 12), crashes=2, marker=str(twice)))
    failed = await lost.wait()
    assert isinstance(failed, Failed) and not failed.internal
    if backend == "child":  # the engine process can tell the job itself killed it twice
        assert failed.message.startswith("This job crashed the style engine twice")
    else:  # a replica's machine may be lost under any job
        assert failed.message == ("The machine running your job stopped unexpectedly, twice; "
                                  "please try again in a few minutes.")
    assert len(list(twice.glob("died-*"))) == 2
    after = await queue.submit(portable("c", dims=(13, 13)))  # the replicas came back
    assert isinstance(await after.wait(), Done)
