"""Small real methods for the Discord tests, next to the engine's toys.

``ToyFade`` has a strength (for Stronger/Weaker) and a seed (for Re-roll); ``ToyPrompted``
declares the option names of the real ``sd`` method and needs a prompt, so it can stand in
for ``sd`` and ``nada`` while those are not merged: the adapter only translates, and what
it translates to is visible in the options the job ran with.
"""

from __future__ import annotations

import random

from PIL import Image, ImageOps

from engine.methods.base import Method, MethodInput, RunContext
from engine.options import SEED, SIZE, STRENGTH, Option, OptionSet

PROMPTS: list[str] = []


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


class ToyPrompted(Method):
    name = "toyprompt"
    title = "Toy prompted"
    summary = "Needs a prompt; tints the image. Stands in for sd and nada."
    options = OptionSet([
        Option("negative_prompt", "str", "", "what to avoid"),
        Option("strength", "float", 0.5, "how far to move", min=0.0, max=1.0, step=0.05),
        Option("guidance_scale", "float", None, "prompt weight", min=0.0, max=20.0),
        Option("steps", "int", None, "denoising steps", min=1, max=50),
        SEED, SIZE,
    ])
    needs_prompt = True

    def run(self, inp: MethodInput, ctx: RunContext) -> Image.Image:
        PROMPTS.append(inp.prompt or "")
        ctx.progress(1.0, "denoising")
        return Image.blend(inp.content, Image.new("RGB", inp.content.size, (0, 0, 255)),
                           inp.options["strength"])


class ToySd(ToyPrompted):
    name = "sd"


class ToyNada(ToyPrompted):
    name = "nada"
