"""The job queue: ordering, limits, batching, cancellation, timeouts, failures, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from engine.engine import StyleEngine
from engine.errors import ImageError, OptionError, QueueFull
from engine.events import Cancelled, Done, Failed, Progress, Queued, Started
from engine.queue import SHUTDOWN_MESSAGE, JobQueue
from engine.request import ImageUpload
from engine.settings import EngineSettings
from tests.engine.conftest import toy_request


@pytest.fixture
async def make_queue(tmp_path, toy_methods):
    queues = []

    async def factory(**overrides):
        settings = EngineSettings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False,
                            **overrides)
        queue = JobQueue(StyleEngine(settings, device="cpu"))
        await queue.start()
        queues.append(queue)
        return queue

    yield factory
    for queue in queues:
        toy_methods.GATE.set()
        await queue.stop(grace_s=1)


async def collect(handle):
    return [event async for event in handle.events()]


async def until_running(queue, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if queue.running_count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no job started")


async def test_a_job_reports_queued_started_progress_done(make_queue):
    queue = await make_queue()
    handle = await queue.submit(toy_request(steps=4))
    events = await collect(handle)
    assert isinstance(events[0], Queued) and events[0].position == 1
    assert isinstance(events[1], Started) and events[1].device == "cpu"
    assert any(isinstance(e, Progress) for e in events)
    done = events[-1]
    assert isinstance(done, Done)
    assert done.image.getpixel((0, 0)) == (55, 225, 225)  # inverted (200, 30, 30)
    assert done.meta.method == "toy" and done.meta.size == (32, 24)
    assert done.meta.seed == done.meta.options["seed"] and isinstance(done.meta.seed, int)
    # A late listener gets the whole story replayed (progress coalesced to the latest).
    replay = await collect(handle)
    assert [type(e) for e in replay] == [Queued, Started, Progress, Done]
    assert replay[2].fraction == 1.0


async def test_jobs_run_in_order_and_positions_move_up(make_queue, toy_methods):
    queue = await make_queue()
    toy_methods.GATE.clear()
    first = await queue.submit(toy_request("a", method="toy", tag="first", wait=True))
    await until_running(queue)
    second = await queue.submit(toy_request("b", dims=(20, 20), tag="second"))
    third = await queue.submit(toy_request("c", dims=(30, 30), tag="third"))
    fourth = await queue.submit(toy_request("d", dims=(40, 40), tag="fourth"))
    assert queue.cancel(second.id)
    await asyncio.sleep(0)
    toy_methods.GATE.set()
    results = await asyncio.gather(first.wait(), second.wait(), third.wait(), fourth.wait())
    assert [type(r) for r in results] == [Done, Cancelled, Done, Done]
    assert toy_methods.RAN == ["first", "third", "fourth"]
    positions = [e.position for e in await collect(fourth) if isinstance(e, Queued)]
    assert positions == [3, 2, 1]


async def test_per_user_and_global_limits_refuse_clearly(make_queue, toy_methods):
    queue = await make_queue(jobs_per_user=2, queue_size=3)
    toy_methods.GATE.clear()
    await queue.submit(toy_request("a", wait=True))
    await until_running(queue)
    await queue.submit(toy_request("a", dims=(10, 10)))
    with pytest.raises(QueueFull, match="You already have 2 jobs"):
        await queue.submit(toy_request("a", dims=(12, 12)))
    for user in ("b", "c"):
        await queue.submit(toy_request(user, dims=(14, 14)))
    with pytest.raises(QueueFull, match="queue is full"):
        await queue.submit(toy_request("d"))


async def test_bad_requests_are_refused_before_queueing(make_queue):
    queue = await make_queue()
    with pytest.raises(OptionError, match="Unknown method 'nope'"):
        await queue.submit(toy_request(method="nope"))
    with pytest.raises(OptionError, match="'steps' is 0, outside its allowed range 1..1000"):
        await queue.submit(toy_request(steps=0))
    with pytest.raises(OptionError, match="has no option 'colour'"):
        await queue.submit(toy_request(colour="red"))
    bad = toy_request()
    bad.content = ImageUpload(b"%PDF-1.4 not an image", "doc.pdf")
    with pytest.raises(ImageError, match="not an image"):
        await queue.submit(bad)
    with pytest.raises(OptionError, match="needs a style image"):
        await queue.submit(toy_request(method="toystyle"))
    assert queue.waiting_count == 0 and queue.running_count == 0


async def test_size_above_server_cap_is_refused(make_queue):
    queue = await make_queue(max_side=256)
    with pytest.raises(OptionError, match="above this server's limit of 256"):
        await queue.submit(toy_request(size=512))


async def test_cancel_a_running_job_stops_it_at_its_next_step(make_queue):
    queue = await make_queue()
    handle = await queue.submit(toy_request(steps=200, delay=0.01))
    await until_running(queue)
    assert handle.cancel()
    final = await handle.wait()
    assert isinstance(final, Cancelled)
    progress = [e for e in await collect(handle) if isinstance(e, Progress)]
    assert not progress or progress[-1].fraction < 1.0


async def test_timeout_fails_the_job_and_the_next_still_runs(make_queue):
    queue = await make_queue(job_timeout_s=0.3)
    slow = await queue.submit(toy_request("a", steps=500, delay=0.01))
    fine = await queue.submit(toy_request("b", dims=(10, 10)))
    final = await slow.wait()
    assert isinstance(final, Failed) and "limit" in final.message and slow.id in final.message
    assert isinstance(await fine.wait(), Done)


async def test_a_failing_job_does_not_harm_the_next(make_queue):
    queue = await make_queue()
    bug = await queue.submit(toy_request("a", fail="bug"))
    refused = await queue.submit(toy_request("b", dims=(11, 11), fail="user"))
    fine = await queue.submit(toy_request("c", dims=(12, 12)))
    bug_final, refused_final, fine_final = await asyncio.gather(bug.wait(), refused.wait(), fine.wait())
    assert isinstance(bug_final, Failed) and bug_final.internal
    assert bug.id in bug_final.message and "toy bug" not in bug_final.message
    assert "toy bug" in bug_final.detail
    assert isinstance(refused_final, Failed) and refused_final.message == "toy says no"
    assert not refused_final.internal
    assert isinstance(fine_final, Done)


async def test_same_shape_jobs_are_batched(make_queue, toy_methods):
    queue = await make_queue(max_batch=3)
    toy_methods.GATE.clear()
    blocker = await queue.submit(toy_request("x", dims=(50, 50), wait=True))
    await until_running(queue)
    handles = [await queue.submit(toy_request(user)) for user in ("a", "b", "c", "d")]
    other = await queue.submit(toy_request("e", dims=(20, 20)))
    toy_methods.GATE.set()
    finals = await asyncio.gather(blocker.wait(), other.wait(), *[h.wait() for h in handles])
    assert all(isinstance(f, Done) for f in finals)
    assert toy_methods.BATCHES == [1, 3, 1, 1]  # blocker, a+b+c, d, e (the oldest leads)


async def test_users_take_turns_and_positions_tell_the_real_order(make_queue, toy_methods):
    """A user with many jobs cannot starve those who come later; each Queued position is
    the place the job really runs in."""
    queue = await make_queue(jobs_per_user=4)
    toy_methods.GATE.clear()
    await queue.submit(toy_request("a", tag="a1", wait=True))
    await until_running(queue)
    submitted = [("a", "a2"), ("a", "a3"), ("a", "a4"), ("b", "b1"), ("b", "b2"), ("c", "c1")]
    handles = [await queue.submit(toy_request(user, dims=(10 + i, 10), tag=tag))
               for i, (user, tag) in enumerate(submitted)]
    shown = {}  # the latest Queued position each user has been told
    for handle in handles:
        queued = [e for e in queue.get(handle.id).history if isinstance(e, Queued)]
        shown[handle.options["tag"]] = queued[-1].position
    listed = {job.prepared.options["tag"]: position for job, position in queue.active_jobs()}
    assert listed == {"a1": 0, **shown}  # what /queue lists agrees
    toy_methods.GATE.set()
    await asyncio.gather(*[h.wait() for h in handles])
    assert toy_methods.RAN == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]
    assert sorted(shown, key=shown.get) == toy_methods.RAN[1:]
    assert sorted(shown.values()) == [1, 2, 3, 4, 5, 6]


async def test_a_batch_led_by_one_user_takes_others_along(make_queue, toy_methods):
    queue = await make_queue(jobs_per_user=4, max_batch=2)
    toy_methods.GATE.clear()
    await queue.submit(toy_request("a", dims=(50, 50), tag="a1", wait=True))
    await until_running(queue)
    handles = [await queue.submit(toy_request(user, tag=tag))
               for user, tag in (("a", "a2"), ("a", "a3"), ("b", "b1"))]
    toy_methods.GATE.set()
    await asyncio.gather(*[h.wait() for h in handles])
    assert toy_methods.RAN == ["a1", "b1", "a2", "a3"]  # b leads; a2 shares b's pass
    assert toy_methods.BATCHES == [1, 2, 1]


async def test_out_of_memory_retries_smaller_then_fails_only_that_job(make_queue, toy_methods):
    queue = await make_queue()
    toy_methods.OOM_ABOVE["side"] = 25  # 32 px fails, the 70% retry (22 px) fits
    handle = await queue.submit(toy_request("a", fail="oom"))
    final = await handle.wait()
    assert isinstance(final, Done) and max(final.image.size) == 22
    toy_methods.OOM_ABOVE["side"] = 5  # even the retry is too big
    failing = await queue.submit(toy_request("b", fail="oom"))
    fine = await queue.submit(toy_request("c", dims=(12, 12)))
    failed = await failing.wait()
    assert isinstance(failed, Failed) and "ran out of memory" in failed.message
    assert isinstance(await fine.wait(), Done)


async def test_stop_tells_waiting_users_and_refuses_new_jobs(make_queue, toy_methods):
    queue = await make_queue()
    toy_methods.GATE.clear()
    running = await queue.submit(toy_request("a", wait=True, steps=3))
    await until_running(queue)
    waiting = await queue.submit(toy_request("b", dims=(10, 10)))
    stopping = asyncio.create_task(queue.stop(grace_s=5))
    await asyncio.sleep(0.05)
    final = await waiting.wait()
    assert isinstance(final, Cancelled) and final.reason == SHUTDOWN_MESSAGE
    with pytest.raises(QueueFull, match="shutting down"):
        await queue.submit(toy_request("c"))
    toy_methods.GATE.set()  # the running job finishes within the grace period
    await stopping
    assert isinstance(await running.wait(), Done)


async def test_stop_cancels_a_running_job_after_the_grace_period(make_queue, toy_methods):
    queue = await make_queue()
    toy_methods.GATE.clear()
    running = await queue.submit(toy_request("a", wait=True))
    await until_running(queue)
    await queue.stop(grace_s=0.1)
    final = await running.wait()
    assert isinstance(final, Cancelled) and final.reason == SHUTDOWN_MESSAGE


async def test_jobs_of_lists_positions_and_only_cancels_own_jobs(make_queue, toy_methods):
    queue = await make_queue()
    toy_methods.GATE.clear()
    mine = await queue.submit(toy_request("a", wait=True))
    await until_running(queue)
    theirs = await queue.submit(toy_request("b", dims=(9, 9)))
    mine2 = await queue.submit(toy_request("a", dims=(8, 8)))
    from engine.request import Requester

    me = Requester("test", "a")
    assert [(j.id, pos) for j, pos in queue.jobs_of(me)] == [(mine.id, 0), (mine2.id, 2)]
    assert not queue.cancel(theirs.id, me)  # someone else's job
    assert queue.cancel(mine2.id, me)
    toy_methods.GATE.set()
    assert isinstance(await theirs.wait(), Done)


async def test_an_observer_that_raises_does_not_break_the_queue(make_queue):
    queue = await make_queue()
    seen = []

    async def broken(job, event):
        seen.append(type(event).__name__)
        raise RuntimeError("observer bug")

    queue.observers.append(broken)
    handle = await queue.submit(toy_request())
    assert isinstance(await handle.wait(), Done)
    await queue.drain_observers()
    assert seen == ["Queued", "Started", "Done"]


async def test_work_runs_off_the_event_loop(make_queue):
    """While a job computes, the loop keeps serving other coroutines."""
    queue = await make_queue()
    handle = await queue.submit(toy_request(steps=20, delay=0.02))
    ticks = 0
    while handle.state != "done":
        ticks += 1
        await asyncio.sleep(0.01)
    assert ticks > 10
    assert isinstance(await handle.wait(), Done)


async def test_old_finished_jobs_are_forgotten(make_queue, monkeypatch):
    from engine import queue as queue_module

    monkeypatch.setattr(queue_module, "FINISHED_JOBS_KEPT", 2)
    queue = await make_queue()
    handles = [await queue.submit(toy_request(f"u{i}", steps=1)) for i in range(4)]
    for handle in handles:
        await handle.wait()
    assert [queue.get(h.id) is not None for h in handles] == [False, False, True, True]
