"""Small real methods for the Slack tests: a seeded tint with a strength, and a prompt method.

They stand in for `fast`/`sd` where only the adapter is under test: each is a real
``Method`` in the real registry, so options, seeds and strength go through the engine.
"""

from __future__ import annotations

import random
from dataclasses import replace

from PIL import Image

from engine.methods.base import Method, MethodInput, RunContext
from engine.options import SEED, SIZE, STRENGTH, Option, OptionSet


class ToyTint(Method):
    """Blends the image towards a colour chosen by the seed; strength sets how far."""

    name = "tint"
    title = "Toy tint"
    summary = "Tints the image with a seeded colour; used by the Slack tests."
    options = OptionSet([STRENGTH, Option("steps", "int", 2, "progress steps", min=1, max=50), SEED, SIZE])

    def run(self, inp: MethodInput, ctx: RunContext):
        rng = random.Random(inp.seed)
        colour = tuple(rng.randrange(256) for _ in range(3))
        steps = inp.options["steps"]
        for i in range(steps):
            ctx.progress((i + 1) / steps, "tinting")
        return Image.blend(inp.content, Image.new("RGB", inp.content.size, colour),
                           inp.options["strength"])


class ToyPrompt(ToyTint):
    """Needs a prompt, like sd; the prompt's length picks the colour."""

    name = "toyprompt"
    title = "Toy prompt"
    needs_prompt = True
    options = OptionSet([replace(STRENGTH, default=0.5), SEED, SIZE])

    def run(self, inp: MethodInput, ctx: RunContext):
        ctx.progress(1.0, "prompting")
        colour = (len(inp.prompt or "") * 7 % 256, 80, 160)
        return Image.blend(inp.content, Image.new("RGB", inp.content.size, colour),
                           inp.options["strength"])
