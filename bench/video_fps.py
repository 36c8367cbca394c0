"""Frames per second of a styled clip per method and size, and what encoding it back costs.

The clip is bench/video_flicker.py's generated one (the sample picture with a sliding square
and sensor noise, lossless APNG; no downloads). For each size, every method runs the whole
clip through ``StyleEngine.execute`` (decoding excluded, batches of ``max_batch``) once to
warm up, then ``--rounds`` times, the methods interleaved round by round so a busy machine
slows them alike; the median is reported as frames/s. Encoding the styled clip as GIF and as
MP4 (what a front end does before fitting, ``stylebot/fitting.py``) is timed once per size.
A method whose weights are absent is reported as skipped.

    PYTHONPATH=. python bench/video_fps.py --sizes 256 512 --frames 8 --rounds 3
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.video_flicker import test_clip  # noqa: E402
from engine.engine import StyleEngine  # noqa: E402
from engine.request import ImageUpload, Requester, StyleRequest  # noqa: E402
from engine.samples import sample_style  # noqa: E402
from engine.settings import EngineSettings  # noqa: E402
from engine.video import encode_clip  # noqa: E402

METHODS = ("hub", "fast", "adain")


def style_png() -> bytes:
    buffer = io.BytesIO()
    sample_style(256).save(buffer, format="PNG")
    return buffer.getvalue()


def prepared(engine: StyleEngine, method: str, clip: bytes, size: int):
    styles = [] if method == "fast" else [ImageUpload(style_png(), "style.png")]
    return engine.prepare(StyleRequest(method=method, content=ImageUpload(clip, "clip.png"),
                                       styles=styles, requester=Requester("bench", "b"),
                                       options={"size": size}))


def cpu_seconds() -> float:
    """CPU time of this process, every thread: on a shared machine it grows with the work
    done, not with the waiting, so it is the steadier number when others are busy."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(engine: StyleEngine, job) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, styled clip) of one whole clip."""
    started, cpu = time.perf_counter(), cpu_seconds()
    out = engine.execute([job], engine.context(None, threading.Event()))[0]
    return time.perf_counter() - started, cpu_seconds() - cpu, out


def bench_size(engine: StyleEngine, size: int, frames: int, rounds: int) -> list[str]:
    clip = test_clip(frames, size)
    jobs, outputs, rows = {}, {}, []
    for method in METHODS:
        try:
            jobs[method] = prepared(engine, method, clip, size)
            outputs[method] = run(engine, jobs[method])[2]  # warm: networks loaded and exported
        except Exception as exc:  # noqa: BLE001 - weights absent on this machine
            rows.append(f"| {method} | {size} | skipped: {str(exc).splitlines()[0][:90]} | | |")
            jobs.pop(method, None)
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in jobs}
    for _ in range(rounds):
        for method, job in jobs.items():
            times[method].append(run(engine, job)[:2])
    for method in jobs:
        wall = statistics.median(t for t, _ in times[method])
        cpu = statistics.median(c for _, c in times[method])
        model = jobs[method].options.get("model")
        label = f"{method} ({model})" if model else method
        rows.append(f"| {label} | {size} | {frames / wall:.1f} | {frames / cpu:.1f} | "
                    f"{', '.join(f'{t:.2f}' for t, _ in times[method])} s |")
    if outputs:
        styled = next(iter(outputs.values()))
        time.sleep(1.0)  # let ONNX Runtime's spinning threads settle before timing Pillow
        for kind in ("gif", "mp4"):
            started, cpu = time.perf_counter(), cpu_seconds()
            data, _ = encode_clip(styled, kind)
            wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
            rows.append(f"| encode {kind.upper()} | {size} | {frames / wall:.1f} | {frames / cpu:.1f} | "
                        f"{len(data) / 1024:.0f} KB for {frames} frames |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", default=str(ROOT.parent / "shared" / "weights"))
    args = parser.parse_args()
    settings = EngineSettings(device=args.device, allow_downloads=False, weights_dir=args.weights,
                              max_side=max(args.sizes))
    engine = StyleEngine(settings)
    print(f"{args.frames} frames a clip, median of {args.rounds} warm runs, on {engine.device} "
          f"({settings.cpu_runtime} runtime on CPU), max_batch {settings.max_batch}")
    print("| method | px | frames/s (wall) | frames per CPU-second | runs |")
    print("| --- | --- | --- | --- | --- |")
    for size in args.sizes:
        for row in bench_size(engine, size, args.frames, args.rounds):
            print(row, flush=True)
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
