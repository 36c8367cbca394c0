"""Small real Methods used to exercise the queue, engine and service without a neural network.

``ToyInvert`` inverts colours, optionally slowly, and can be told to fail in the ways real
methods fail (a bug, a user error, out of GPU memory), so queue behaviour can be observed.
``ToyFade`` has a strength (for Stronger/Weaker) and a seed (for Re-roll). ``ToyPreview``
reports a preview image with each step, as gatys does.
"""

from __future__ import annotations

import random
import threading
import time

from PIL import Image, ImageOps

from engine.errors import JobCancelled, UserError
from engine.methods.base import Method, MethodInput, RunContext
from engine.options import SEED, SIZE, STRENGTH, Option, OptionSet

BATCHES: list[int] = []  # sizes of batches run, across instances
OOM_ABOVE: dict[str, int] = {"side": 10**9}
RAN: list[str] = []  # tags of jobs in the order they ran
GATE = threading.Event()  # when cleared, runs with wait=true block until it is set


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
