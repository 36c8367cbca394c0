"""Stand-ins for quality=refine's two methods, registered under their real names.

``ToyDraft`` takes hub's place: it inverts the photo at once. ``ToyGatys`` is the real gatys
method (its options, its checks of the start image) with the optimisation replaced by a
few steps that blend its start image toward grey; it records the start image it was given
and, while ``GATE`` is cleared, waits between steps so a test can stop it mid-run.
"""

from __future__ import annotations

import threading

from PIL import Image, ImageOps

from engine import methods
from engine.methods.base import Method, MethodInput, RunContext
from engine.methods.gatys import GatysMethod
from engine.options import PRESERVE_COLOR, SIZE, STRENGTH, OptionSet

STARTS: list[Image.Image | None] = []  # the start image of every ToyGatys run, in order
GATE = threading.Event()  # cleared: ToyGatys waits at each step (still cancellable)
GATE.set()


class ToyDraft(Method):
    name = "hub"
    title = "Toy draft"
    summary = "Inverts the photo at once, as a real-time draft."
    options = OptionSet([SIZE, STRENGTH, PRESERVE_COLOR])  # hub's own: no seed
    min_styles = 1
    max_styles = 4

    def run(self, inp: MethodInput, ctx: RunContext) -> Image.Image:
        ctx.progress(1.0, "drafting")
        return ImageOps.invert(inp.content)


class ToyGatys(GatysMethod):
    def run(self, inp: MethodInput, ctx: RunContext) -> Image.Image:
        STARTS.append(inp.init_image.copy() if inp.init_image is not None else None)
        start = inp.init_image or inp.content
        steps = 4
        for i in range(steps):
            while not GATE.wait(0.02):
                ctx.check_cancelled()
            ctx.progress((i + 1) / steps, "optimising")
        return Image.blend(start, Image.new("RGB", start.size, (128, 128, 128)), 0.5)


def register(monkeypatch) -> None:
    """Put the stand-ins in the registry for one test, as hub and gatys; hub drafts even where
    adain's real weights are staged (``test_refine`` checks that choice on its own)."""
    from stylebot import refine

    monkeypatch.setattr(refine, "DRAFTERS", ("hub",))
    monkeypatch.setitem(methods.METHOD_PATHS, "hub", "tests.stylebot.refine_toys:ToyDraft")
    monkeypatch.setitem(methods.METHOD_PATHS, "gatys", "tests.stylebot.refine_toys:ToyGatys")
    methods.get_method.cache_clear()
    methods.loadable_methods.cache_clear()
    STARTS.clear()
    GATE.set()


def unregister() -> None:
    GATE.set()
    methods.get_method.cache_clear()
    methods.loadable_methods.cache_clear()
