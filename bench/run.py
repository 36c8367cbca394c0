"""Time each method at several sizes on this machine's device, and the queue's overhead.

    python bench/run.py                       # every method whose weights are here
    python bench/run.py --methods fast hub --sizes 256 512 --repeat 3
    python bench/run.py --json bench/results.json

Each timing is the median of ``--repeat`` warm runs (one untimed warm-up first, so model
loading is excluded; it is reported separately as ``load_s``). Methods whose weights are
missing are listed as skipped with the reason. Record results in bench/README.md with
the machine named.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.engine import StyleEngine  # noqa: E402
from engine.errors import UserError  # noqa: E402
from engine.methods import get_method, method_names  # noqa: E402
from engine.methods.base import MethodInput  # noqa: E402
from engine.samples import sample_content, sample_style  # noqa: E402
from engine.settings import EngineSettings  # noqa: E402

# Per-method options that keep optimisation methods comparable and finite.
BENCH_OPTIONS = {
    "gatys": {"iterations": 50},
    "sd": {"steps": 4, "strength": 0.5},
    "nada": {"iterations": 100},
}


def machine() -> str:
    import torch

    cpu = f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores"
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__}); host {cpu}"
    return f"CPU only: {cpu} (torch {torch.__version__}, {torch.get_num_threads()} threads)"


def make_input(method, size: int, seed: int = 0) -> MethodInput:
    options = method.options.validate(BENCH_OPTIONS.get(method.name, {}), method=method.name)
    styles = [sample_style(size)] * max(method.min_styles, 0)
    return MethodInput(content=sample_content(size), options={**options, "seed": seed}, seed=seed,
                       size=size, styles=styles, style_weights=[1.0 / len(styles)] * len(styles) if styles else [],
                       prompt="an oil painting" if method.needs_prompt else None)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_method(engine: StyleEngine, name: str, sizes: list[int], repeat: int, batch: int) -> dict:
    method = get_method(name)
    ctx = engine.context(None, threading.Event())
    rows = []
    try:
        started = time.perf_counter()
        method.run(make_input(method, min(sizes)), ctx)  # warm-up, loads the models
        load_s = time.perf_counter() - started
    except UserError as exc:
        return {"method": name, "skipped": exc.message}
    for size in sizes:
        inp = make_input(method, size)
        times = []
        for _ in range(repeat):
            sync(engine.device)
            t0 = time.perf_counter()
            method.run(inp, ctx)
            sync(engine.device)
            times.append(time.perf_counter() - t0)
        row = {"size": size, "median_s": round(statistics.median(times), 4)}
        if method.batchable and batch > 1:
            inputs = [make_input(method, size, seed=i) for i in range(batch)]
            sync(engine.device)
            t0 = time.perf_counter()
            method.run_batch(inputs, ctx)
            sync(engine.device)
            row[f"batch{batch}_per_image_s"] = round((time.perf_counter() - t0) / batch, 4)
        rows.append(row)
        print(f"{name:6} {size:5d}px  {row}", flush=True)
    return {"method": name, "load_s": round(load_s, 3), "sizes": rows}


async def queue_overhead(engine: StyleEngine, name: str, jobs: int) -> dict:
    """Wall time per job through JobQueue (decode, events, thread hop) minus a direct call."""
    import io

    from engine.queue import JobQueue
    from engine.request import ImageUpload, Requester, StyleRequest

    method = get_method(name)
    buffer = io.BytesIO()
    sample_content(256).save(buffer, "PNG")
    style = io.BytesIO()
    sample_style(256).save(style, "PNG")
    queue = JobQueue(engine)
    await queue.start()
    try:
        def request(i):
            return StyleRequest(method=name, content=ImageUpload(buffer.getvalue()),
                                requester=Requester("bench", str(i)),
                                styles=[ImageUpload(style.getvalue())] * method.min_styles,
                                options={**BENCH_OPTIONS.get(name, {}),
                                         **({"seed": 0} if "seed" in method.options else {})})
        await (await queue.submit(request(-1))).wait()  # warm
        direct = []
        ctx = engine.context(None, threading.Event())
        prepared = engine.prepare(request(0))
        for _ in range(jobs):
            t0 = time.perf_counter()
            method.run(prepared.input, ctx)
            direct.append(time.perf_counter() - t0)
        queued = []
        for i in range(jobs):
            t0 = time.perf_counter()
            await (await queue.submit(request(i))).wait()
            queued.append(time.perf_counter() - t0)
    finally:
        await queue.stop(grace_s=0)
    d, q = statistics.median(direct), statistics.median(queued)
    return {"method": name, "direct_s": round(d, 4), "queued_s": round(q, 4),
            "overhead_ms": round((q - d) * 1000, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--sizes", nargs="*", type=int, default=[256, 512, 1024])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--queue-jobs", type=int, default=10)
    parser.add_argument("--queue-method", default="fast")
    parser.add_argument("--queue-only", action="store_true", help="only measure the queue overhead")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    settings = EngineSettings(max_side=max(args.sizes))
    engine = StyleEngine(settings)
    report = {"machine": machine(), "device": engine.device, "methods": [], "queue": None}
    print(report["machine"], flush=True)
    for name in [] if args.queue_only else (args.methods or method_names()):
        report["methods"].append(time_method(engine, name, args.sizes, args.repeat, args.batch))
        engine.models.clear()
    try:
        report["queue"] = asyncio.run(queue_overhead(engine, args.queue_method, args.queue_jobs))
        print("queue", report["queue"], flush=True)
    except UserError as exc:
        report["queue"] = {"skipped": exc.message}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
