"""Small real Methods used to exercise the queue, engine and service without a neural network.

``ToyInvert`` inverts colours, optionally slowly, and can be told to fail in the ways real
methods fail (a bug, a user error, out of GPU memory), so queue behaviour can be observed.
``ToyFade`` has a strength (for Stronger/Weaker) and a seed (for Re-roll). ``ToyPreview``
reports a preview image with each step, as gatys does.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

from engine.errors import JobCancelled, UserError
from engine.methods.base import Method, MethodInput, RunContext
from engine.options import SEED, SIZE, STRENGTH, Option, OptionSet
from tests.engine.shared_state import SharedDict, SharedGate, SharedList

# Shared through files, so the tests see what the toys did in an engine process too (which
# inherits the folder through the environment); the process that made it removes it.
if "STYLEBOT_TOY_STATE" not in os.environ:
    os.environ["STYLEBOT_TOY_STATE"] = tempfile.mkdtemp(prefix="stylebot-toys-")
    atexit.register(shutil.rmtree, os.environ["STYLEBOT_TOY_STATE"], ignore_errors=True)
_STATE = Path(os.environ["STYLEBOT_TOY_STATE"])
BATCHES = SharedList(_STATE / "batches")  # sizes of batches run, across instances
OOM_ABOVE = SharedDict(_STATE / "oom-above", {"side": 10**9})
RAN = SharedList(_STATE / "ran")  # tags of jobs in the order they ran
GATE = SharedGate(_STATE / "gate-closed")  # when cleared, runs with wait=true block until it is set


class ToyInvert(Method):
    name = "toy"
    title = "Toy inverter"
    summary = "Inverts colours; used by the queue tests."
    options = OptionSet([
        Option("steps", "int", 5, "progress steps", min=1, max=1000),
        Option("delay", "float", 0.0, "seconds per step", min=0, max=5),
        Option("fail", "choice", "no", "how to fail", choices=("no", "bug", "user", "oom")),
        Option("tag", "str", "", "label recorded when the job runs"),
        Option("wait", "bool", False, "block on the test gate before running"),
        SIZE, SEED,
    ])
    batchable = True

    def batch_key(self, inp: MethodInput):
        return inp.content.size

    def run(self, inp: MethodInput, ctx: RunContext):
        return self.run_batch([inp], ctx)[0]

    def run_batch(self, inputs: list[MethodInput], ctx: RunContext):
        BATCHES.append(len(inputs))
        for inp in inputs:
            RAN.append(inp.options["tag"])
            if inp.options["wait"]:
                while not GATE.wait(0.02):
                    ctx.check_cancelled()
            mode = inp.options["fail"]
            if mode == "bug":
                raise RuntimeError("toy bug")
            if mode == "user":
                raise UserError("toy says no")
            if mode == "oom" and max(inp.content.size) > OOM_ABOVE["side"]:
                import torch

                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        steps = inputs[0].options["steps"]
        for i in range(steps):
            time.sleep(inputs[0].options["delay"])
            ctx.progress((i + 1) / steps, "inverting")
        return [ImageOps.invert(inp.content) for inp in inputs]


class ToyStyled(ToyInvert):
    """Same, but needs one or two style images (for preset and validation tests)."""

    name = "toystyle"
    min_styles = 1
    max_styles = 2
    batchable = False


class ToyFade(Method):
    name = "toyfade"
    title = "Toy fader"
    summary = "Fades towards the inverted image by strength, plus seeded noise in one pixel."
    options = OptionSet([STRENGTH, SEED, SIZE])

    def run(self, inp: MethodInput, ctx: RunContext) -> Image.Image:
        ctx.progress(0.5, "fading")
        out = Image.blend(inp.content, ImageOps.invert(inp.content), inp.options["strength"])
        rng = random.Random(inp.seed)
        out.putpixel((0, 0), tuple(rng.randrange(256) for _ in range(3)))
        ctx.progress(1.0, "fading")
        return out


class ToyPreview(ToyInvert):
    """Inverts step by step and reports each step's image as a preview, like gatys does; its
    ``fail`` modes strike after the last preview, so a failure follows previews."""

    name = "toypreview"
    title = "Toy previewer"
    summary = "Inverts colours a step at a time, with a preview per step."
    batchable = False

    def run(self, inp: MethodInput, ctx: RunContext) -> Image.Image:
        steps, result = inp.options["steps"], ImageOps.invert(inp.content)
        for i in range(steps):
            time.sleep(inp.options["delay"])
            ctx.progress((i + 1) / steps, "inverting",
                         preview=Image.blend(inp.content, result, (i + 1) / steps))
        if inp.options["fail"] == "bug":
            raise RuntimeError("toy bug")
        if inp.options["fail"] == "user":
            raise UserError("toy says no")
        return result


CRASHES = SharedList(_STATE / "crashes")  # one entry per run of ToyCrash that crashed


class ToyCrash(Method):
    """Ends its engine process the ways native code does: abort, exhausted memory, or a
    hang that ignores cancellation; ``times`` > 0 crashes only that many runs in all."""

    name = "toycrash"
    title = "Toy crasher"
    summary = "Takes down the engine process; used by the engine process tests."
    options = OptionSet([
        Option("how", "choice", "abort", "how to crash", choices=("abort", "memory", "hang", "none")),
        Option("times", "int", 0, "crash only the first N runs (0: every run)", min=0, max=10),
        SIZE, SEED,
    ])

    def run(self, inp: MethodInput, ctx: RunContext) -> Image.Image:
        if multiprocessing.parent_process() is None:
            raise RuntimeError("toycrash runs only in an engine process, never in the tests' own")
        ctx.progress(0.1, "crashing")
        how, times = inp.options["how"], inp.options["times"]
        if how != "none" and (times == 0 or len(CRASHES) < times):
            CRASHES.append(how)
            if how == "abort":
                os.abort()
            if how == "memory":
                _exhaust_memory()
            if how == "hang":
                time.sleep(3600)  # no progress calls: cancellation never reaches it
        return ImageOps.invert(inp.content)


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


class ToyPortable(Method):
    """Inverts colours; every behaviour is an option, none a module global, so it acts the
    same in this process and in a Ray replica (the backend contract tests use it).

    ``oom_above``: out of memory above that side (0: never). ``crashes``: the process dies
    (``os._exit``) on that many attempts, counted as files in the ``marker`` folder, so a
    retry in a fresh process can tell it is not the first; a cancelled run leaves a
    ``stopped-after-N`` file there. Progress stages name the batch size.
    """

    name = "toyportable"
    title = "Portable toy"
    summary = "Inverts colours; fails, dies or runs out of memory when its options say so."
    options = OptionSet([
        Option("steps", "int", 5, "progress steps", min=1, max=1000),
        Option("delay", "float", 0.0, "seconds per step", min=0, max=5),
        Option("fail", "choice", "no", "how to fail", choices=("no", "bug", "user")),
        Option("oom_above", "int", 0, "run out of memory above this side; 0: never", min=0),
        Option("crashes", "int", 0, "attempts on which the process dies", min=0, max=5),
        Option("marker", "str", "", "folder counting the attempts that died"),
        Option("report_pid", "bool", False, "name the process in the progress stage"),
        SIZE, SEED,
    ])
    batchable = True

    def batch_key(self, inp: MethodInput):
        return inp.content.size

    def run(self, inp: MethodInput, ctx: RunContext):
        return self.run_batch([inp], ctx)[0]

    def run_batch(self, inputs: list[MethodInput], ctx: RunContext):
        import os
        from pathlib import Path

        opts = inputs[0].options
        marker = Path(opts["marker"]) if opts["marker"] else None
        if opts["crashes"] and marker is not None:
            if len(list(marker.glob("died-*"))) < opts["crashes"]:
                (marker / f"died-{os.getpid()}").touch()
                os._exit(1)
        if opts["fail"] == "bug":
            raise RuntimeError("toy bug")
        if opts["fail"] == "user":
            raise UserError("toy says no")
        if opts["oom_above"] and max(inputs[0].content.size) > opts["oom_above"]:
            import torch

            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        steps = opts["steps"]
        stage = f"batch of {len(inputs)}" + (f" in pid {os.getpid()}" if opts["report_pid"] else "")
        for i in range(steps):
            time.sleep(opts["delay"])
            try:
                ctx.progress((i + 1) / steps, stage)
            except JobCancelled:
                if marker is not None:
                    (marker / f"stopped-after-{i + 1}").touch()  # proof the cancel got here
                raise
        return [ImageOps.invert(inp.content) for inp in inputs]
