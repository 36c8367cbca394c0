"""Memory per upload: what decoding big PNGs costs the process (issue 11 #11).

Each case runs in a fresh subprocess, so one case's heap does not flatter the next:

- ``one``: one request, a content and four styles, each a 40-megapixel PNG, through
  ``StyleEngine.prepare``;
- ``six``: six such requests at once, each in its own thread (as the queue's
  ``asyncio.to_thread`` runs them).

A case reports the RSS when idle (after a warm-up request, so imports are paid), how much
the peak (VmHWM, reset just before) rose above it, how long the request(s) took, and the RSS
left after the prepared jobs are dropped. The parent runs every case ``--runs`` times and
prints the medians as a markdown table.

    PYTHONPATH=. .venv/bin/python bench/memory.py [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SIZE = (8000, 5000)  # 40 megapixels: the default per-image limit
N_IMAGES = 5  # content + 4 styles, the most `hub` takes
N_REQUESTS = 6


def make_png(path: Path) -> int:
    """A 40 MP RGB PNG of smooth gradients: tiny on the wire, 120 MB of pixels."""
    from PIL import Image

    w, h = SIZE
    horizontal = Image.linear_gradient("L").rotate(90).resize((w, h))
    vertical = Image.linear_gradient("L").resize((w, h))
    flat = Image.new("L", (w, h), 90)
    buffer = io.BytesIO()
    Image.merge("RGB", (horizontal, vertical, flat)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return len(buffer.getvalue())


def _status(field: str) -> int:
    """VmRSS / VmHWM of this process, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    Path("/proc/self/clear_refs").write_text("5")


def child(case: str, png: Path, home: Path, served: bool = False) -> dict:
    from engine.engine import StyleEngine
    from engine.request import ImageUpload, Requester, StyleRequest
    from engine.settings import EngineSettings

    engine = StyleEngine(EngineSettings(home=home, device="cpu", allow_downloads=False), device="cpu")
    data = png.read_bytes()

    def request(blob: bytes) -> StyleRequest:
        return StyleRequest(method="hub", content=ImageUpload(blob, "c.png"),
                            styles=[ImageUpload(blob, f"s{i}.png") for i in range(N_IMAGES - 1)],
                            requester=Requester("bench", "u"))

    small = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (64, 48), (10, 20, 30)).save(small, format="PNG")
    warm = engine.prepare(request(small.getvalue()))  # warm-up: imports, plugins, method modules
    if served:  # a serving bot: one job has run, so torch and the hub networks are loaded
        engine.execute([warm], engine.context(None, threading.Event()))
    del warm
    gc.collect()
    idle = _status("VmRSS")
    _reset_peak()

    # Worker threads that outlive the request, as asyncio's default executor's do: memory
    # freed in a thread's malloc arena stays with the process unless it is trimmed.
    n = 1 if case == "one" else N_REQUESTS
    pool = ThreadPoolExecutor(max_workers=n)
    barrier = threading.Barrier(n)

    def work(blob: bytes):
        barrier.wait()
        return engine.prepare(request(blob))

    started = time.perf_counter()
    results = list(pool.map(work, [data] * n))
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    sizes = sorted({max(r.input.content.size) for r in results})
    del results
    gc.collect()
    dropped = _status("VmRSS")
    try:  # what the engine does after each job (absent before issue 11 #11)
        from engine.memory import release_memory
    except ImportError:
        pass
    else:
        release_memory()
    after = _status("VmRSS")
    return {"idle_mb": idle / 1e6, "peak_added_mb": (peak - idle) / 1e6, "seconds": seconds,
            "dropped_held_mb": (dropped - idle) / 1e6,
            "after_mb": after / 1e6, "held_mb": (after - idle) / 1e6, "content_side": sizes,
            "threads_alive": len(pool._threads)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=["one", "six"])
    parser.add_argument("--png", type=Path)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--served", action="store_true",
                        help="measure from the idle of a process that has run one hub job "
                             "(torch and the networks loaded), as a serving bot is")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.png, args.home, args.served)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "big.png"
        n_bytes = make_png(png)
        print(f"{SIZE[0]}x{SIZE[1]} PNG, {n_bytes / 1000:.0f} KB; {N_IMAGES} per request "
              f"({N_IMAGES * n_bytes / 1000:.0f} KB on the wire)", file=sys.stderr)
        rows = {}
        for case in ("one", "six"):
            runs = []
            for _ in range(args.runs):
                out = subprocess.run([sys.executable, __file__, "--child", case, "--png", str(png),
                                      "--home", tmp, *(["--served"] if args.served else [])],
                                     check=True, capture_output=True, text=True)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(case, runs[-1], file=sys.stderr)
            rows[case] = {k: statistics.median(r[k] for r in runs)
                          for k in ("idle_mb", "peak_added_mb", "seconds", "dropped_held_mb", "held_mb")}
    print("| case | idle RSS | peak above idle | wall time | held after the jobs are dropped "
          "| held after `release_memory()` (run after each job) |")
    print("| --- | --- | --- | --- | --- | --- |")
    names = {"one": f"one request, {N_IMAGES} x 40 MP PNG",
             "six": f"{N_REQUESTS} such requests at once (threads)"}
    for case, r in rows.items():
        print(f"| {names[case]} | {r['idle_mb']:.0f} MB | {r['peak_added_mb']:.0f} MB | "
              f"{r['seconds']:.2f} s | {r['dropped_held_mb']:.0f} MB | {r['held_mb']:.0f} MB "
              f"({100 * r['held_mb'] / r['idle_mb']:.0f}% of idle) |")


if __name__ == "__main__":
    main()
