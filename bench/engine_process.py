"""What the engine process costs and buys: issue 18's numbers.

    STYLEBOT_WEIGHTS_DIR=../shared/weights python bench/engine_process.py
    python bench/engine_process.py --rounds 60 --gatys-size 128 --gatys-iterations 10

1. transport: a 512 px RGB image to a spawned process and back, pickled over a pipe
   (what the engine process uses) against shared memory (median round trip).
2. overhead: one job of a do-nothing method on a 512 px image through ``backend.run``,
   engine process against a thread of this process, interleaved round by round; the
   median of the per-round differences is the cost of the process boundary.
3. restart: SIGKILL the engine process, time until it is ready again.
4. loop latency: an asyncio probe sleeps 5 ms over and over while a ``gatys`` job runs (real
   VGG weights); p50/p99/max of how late it wakes, the job inline and in the engine process.
Record results in bench/README.md with the machine named.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from engine.backends.inprocess import InProcessBackend  # noqa: E402
from engine.backends.process import ProcessBackend  # noqa: E402
from engine.engine import PreparedJob, StyleEngine  # noqa: E402
from engine.methods.base import Method, MethodInput, RunContext  # noqa: E402
from engine.options import SEED, OptionSet  # noqa: E402
from engine.settings import EngineSettings  # noqa: E402


class Identity(Method):
    """Gives the content back untouched: all that is left to time is the boundary."""

    name = "identity"
    title = summary = "identity"
    options = OptionSet([SEED])

    def run(self, inp: MethodInput, ctx: RunContext) -> Image.Image:
        ctx.progress(1.0, "identity")
        return inp.content


def machine() -> str:
    lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name")), "?")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores (lscpu), load average {load}"


def image_512() -> Image.Image:
    return Image.effect_noise((512, 512), 64).convert("RGB")


# -- 1. transport ----------------------------------------------------------------------------

TRANSPORTS = ("Connection.send (pickle)", "wire.py (pickle 5, pixels out of band)",
              "shared memory (a segment per image)")


class _Duplex:
    """Two one-way pipes, as the engine process uses, behind one Connection-like object."""

    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer

    def send(self, obj) -> None:
        self.writer.send(obj)

    def send_bytes(self, data) -> None:
        self.writer.send_bytes(data)

    def recv(self):
        return self.reader.recv()

    def recv_bytes(self):
        return self.reader.recv_bytes()


def _echo(reader, writer, how: int) -> None:
    from multiprocessing import shared_memory

    from engine.backends import wire

    conn = _Duplex(reader, writer)
    while True:
        if how == 0:
            message = conn.recv()
            if message is None:
                return
            conn.send(message)
        elif how == 1:
            message = wire.recv(conn)
            if message is None:
                return
            wire.send(conn, message)
        else:
            message = conn.recv()
            if message is None:
                return
            name, size = message
            block = shared_memory.SharedMemory(name=name)
            image = Image.frombytes("RGB", size, bytes(block.buf[:size[0] * size[1] * 3]))
            block.close()
            data = image.tobytes()
            out = shared_memory.SharedMemory(create=True, size=len(data))
            out.buf[:len(data)] = data
            conn.send((out.name, image.size))
            out.close()


def _round_trip(conn, image: Image.Image, how: int) -> Image.Image:
    from multiprocessing import shared_memory

    from engine.backends import wire

    if how == 0:
        conn.send(image)
        return conn.recv()
    if how == 1:
        wire.send(conn, image)
        return wire.recv(conn)
    data = image.tobytes()
    block = shared_memory.SharedMemory(create=True, size=len(data))
    block.buf[:len(data)] = data
    conn.send((block.name, image.size))
    name, size = conn.recv()
    block.close()
    block.unlink()
    back = shared_memory.SharedMemory(name=name)
    result = Image.frombytes("RGB", size, bytes(back.buf[:len(data)]))
    back.close()
    back.unlink()
    return result


def transport(rounds: int) -> dict[str, float]:
    """Median round trip of each transport, the transports interleaved round by round."""
    from engine.backends.engine_child import widen_pipes

    context = multiprocessing.get_context("spawn")
    image, times = image_512(), {name: [] for name in TRANSPORTS}
    ends, processes = [], []
    for how in range(len(TRANSPORTS)):
        their_reader, our_writer = context.Pipe(duplex=False)
        our_reader, their_writer = context.Pipe(duplex=False)
        widen_pipes(our_writer, our_reader)
        process = context.Process(target=_echo, args=(their_reader, their_writer, how), daemon=True)
        process.start()
        ends.append(_Duplex(our_reader, our_writer))
        processes.append(process)
    for how in range(len(TRANSPORTS)):  # every transport gives the very pixels back
        assert _round_trip(ends[how], image, how).tobytes() == image.tobytes()
    for i in range(rounds + 10):
        for how, name in enumerate(TRANSPORTS):
            started = time.perf_counter()
            assert _round_trip(ends[how], image, how).size == image.size
            if i >= 10:
                times[name].append(time.perf_counter() - started)
    for how, (conn, process) in enumerate(zip(ends, processes)):
        if how == 1:
            from engine.backends import wire

            wire.send(conn, None)
        else:
            conn.send(None)
        process.join()
    return {name: statistics.median(values) for name, values in times.items()}


# -- 2 and 3. overhead and restart -----------------------------------------------------------

def identity_job(engine: StyleEngine) -> PreparedJob:
    method = Identity()
    image = image_512()
    inp = MethodInput(content=image, options={"seed": 0}, seed=0, size=512)
    return PreparedJob(method=method, input=inp, request=None)  # type: ignore[arg-type]


async def overhead(settings: EngineSettings, rounds: int) -> dict[str, float]:
    engine = StyleEngine(settings)
    inline, child = InProcessBackend(engine), ProcessBackend(engine, restart_delay_s=0.0)
    await child.start()
    job, cancel = identity_job(engine), threading.Event()
    times: dict[str, list[float]] = {"inline": [], "child": []}
    try:
        for i in range(rounds + 5):
            for name, backend in (("inline", inline), ("child", child)):
                started = time.perf_counter()
                [result] = await backend.run([job], lambda *a: None, cancel)
                if i >= 5:
                    times[name].append(time.perf_counter() - started)
                assert result.size == (512, 512)
        diffs = [c - n for c, n in zip(times["child"], times["inline"])]
        out = {"inline": statistics.median(times["inline"]), "child": statistics.median(times["child"]),
               "difference": statistics.median(diffs)}
        restarts = []
        for _ in range(3):
            pid, before = child.pid, child.restarts
            started = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            while not (child.restarts > before and child.state == "ready"):
                await asyncio.sleep(0.005)
            restarts.append(time.perf_counter() - started)
        out["restart"] = statistics.median(restarts)
        out["restarts"] = restarts
        return out
    finally:
        await child.stop()


# -- 4. event-loop latency -------------------------------------------------------------------

async def probe_lateness(stop: asyncio.Event, period: float = 0.005) -> list[float]:
    late = []
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(period)
        late.append(time.perf_counter() - started - period)
    return late


async def loop_latency(settings: EngineSettings, size: int, iterations: int,
                       rounds: int) -> dict[str, list[dict[str, float]]]:
    from engine.request import ImageUpload, Requester, StyleRequest
    from engine.samples import sample_content, sample_style

    def png(image) -> bytes:
        import io

        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    engine = StyleEngine(settings)
    request = StyleRequest(method="gatys", content=ImageUpload(png(sample_content(size))),
                           styles=[ImageUpload(png(sample_style(size)))],
                           requester=Requester("bench", "b"),
                           options={"iterations": iterations, "size": size})
    job = engine.prepare(request)
    inline, child = InProcessBackend(engine), ProcessBackend(engine)
    await child.start()
    results: dict[str, list[dict[str, float]]] = {"inline": [], "child": []}
    try:
        for _ in range(2):  # warm: weights loaded, first-run allocations made, in both
            for name, backend in (("inline", inline), ("child", child)):
                await backend.run([job], lambda *a: None, threading.Event())
        for _ in range(rounds):
            for name, backend in (("inline", inline), ("child", child)):
                stop = asyncio.Event()
                probe = asyncio.create_task(probe_lateness(stop))
                started = time.perf_counter()
                await backend.run([job], lambda *a: None, threading.Event())
                seconds = time.perf_counter() - started
                stop.set()
                late = sorted(await probe)
                results[name].append({"job_s": seconds, "p50_ms": 1000 * late[len(late) // 2],
                                      "p99_ms": 1000 * late[int(len(late) * 0.99)],
                                      "max_ms": 1000 * late[-1], "samples": len(late)})
    finally:
        await child.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--gatys-size", type=int, default=128)
    parser.add_argument("--gatys-iterations", type=int, default=10)
    parser.add_argument("--gatys-rounds", type=int, default=3)
    parser.add_argument("--skip-gatys", action="store_true")
    args = parser.parse_args()
    settings = EngineSettings(engine_process="child")
    print(f"machine: {machine()}; device setting {settings.device}")
    for name, seconds in transport(args.rounds).items():
        print(f"transport, 512 px round trip, {name}: median {seconds * 1000:.2f} ms")
    numbers = asyncio.run(overhead(settings, args.rounds))
    print(f"overhead, identity job at 512 px through backend.run (median of {args.rounds}): "
          f"inline {numbers['inline'] * 1000:.2f} ms, engine process {numbers['child'] * 1000:.2f} ms, "
          f"median per-round difference {numbers['difference'] * 1000:.2f} ms")
    print("restart after SIGKILL until ready: median {:.2f} s ({})".format(
        numbers["restart"], ", ".join(f"{s:.2f}" for s in numbers["restarts"])))
    if not args.skip_gatys:
        latency = asyncio.run(loop_latency(settings, args.gatys_size, args.gatys_iterations,
                                           args.gatys_rounds))
        for name, runs in latency.items():
            for run in runs:
                print(f"loop lateness during gatys {args.gatys_size} px x{args.gatys_iterations} "
                      f"({name}): job {run['job_s']:.2f} s, p50 {run['p50_ms']:.2f} ms, "
                      f"p99 {run['p99_ms']:.2f} ms, max {run['max_ms']:.2f} ms "
                      f"({run['samples']} samples)")


if __name__ == "__main__":
    main()
