"""Small real methods for the Discord tests, next to the engine's toys.

``ToyPrompted`` declares the option names of the real ``sd`` method and needs a prompt, so
it stands in for ``sd`` and ``nada`` (too slow for these tests): the adapter only
translates, and what it translates to is visible in the options the job ran with.
"""

from __future__ import annotations

from PIL import Image

from engine.methods.base import Method, MethodInput, RunContext
from engine.options import SEED, SIZE, Option, OptionSet

PROMPTS: list[str] = []


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
