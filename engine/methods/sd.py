"""Stable Diffusion img2img: the photo is partly noised, then denoised towards a text prompt.

Unlike the other methods the style comes from words ("as a woodcut"), not a style image.
The model is the server's (``STYLEBOT_SD_MODEL``, default SD-Turbo) or one of a few named
alternatives; chat users can never make the server download an arbitrary Hub model.
Torch and diffusers are imported only when a job runs (``engine.nets.diffusion``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue import SD_MODELS, SD_SAFETY_CHECKER, SD_SERVER_MODEL, sd_model_spec
from ..errors import OptionError, UserError
from ..options import SEED, SIZE, STRENGTH, Option, OptionSet
from .base import Method, MethodInput, RunContext

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..settings import EngineSettings

log = logging.getLogger(__name__)

FLAGGED_MESSAGE = ("The result was flagged by the safety filter and was not posted; "
                   "try a different prompt.")
MAX_PROMPT_CHARS = 1000  # CLIP reads 77 tokens (about 60 words); the rest would be cut anyway
MIN_SIDE = 64

# Samplers by the names people know them by: diffusers class and config overrides.
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),  # as SD ships it
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {}),
    "dpm++_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}


@dataclass(frozen=True)
class Profile:
    """How a model family wants to be driven: distilled turbo models skip guidance and
    need only a few steps; classic models need guidance and tens of steps."""

    turbo: bool
    steps: int
    guidance: float
    max_steps: int


TURBO = Profile(turbo=True, steps=2, guidance=0.0, max_steps=4)
CLASSIC = Profile(turbo=False, steps=30, guidance=7.5, max_steps=50)


def profile_for(spec: str) -> Profile:
    """Turbo by name (sd-turbo, sdxl-turbo and their fine-tunes are named so); else classic."""
    return TURBO if "turbo" in spec.lower() else CLASSIC


OPTIONS = OptionSet([
    Option("model", "str", None,
           "Model: turbo (fast), sdxl-turbo or 2.1; default: the server's model."),
    Option("negative_prompt", "str", "",
           "What to steer away from (needs guidance_scale above 1, so not with turbo models)."),
    replace(STRENGTH, default=0.5,
            help="How far to move from your photo: 0 returns it unchanged, 1 ignores it."),
    Option("guidance_scale", "float", None,
           "How closely to follow the prompt (default: 0 for turbo models, 7.5 otherwise).",
           min=0.0, max=20.0, step=0.5),
    Option("steps", "int", None,
           "Denoising steps before strength is applied; strength x steps of them run "
           "(default: 2 for turbo models (1..4), 30 otherwise).",
           min=1, max=CLASSIC.max_steps),
    Option("scheduler", "choice", "default",
           "Sampler; 'default' keeps the model's own.", choices=("default", *SCHEDULERS)),
    SEED,
    SIZE,
])


@dataclass(frozen=True)
class ModelChoice:
    entry: str  # catalogue name of the model folder
    label: str  # the model as the user or operator named it, for messages and logs
    spec: str  # repo id or folder


@dataclass(frozen=True)
class Plan:
    """Validated, defaulted settings for one run."""

    model: ModelChoice
    profile: Profile
    strength: float
    steps: int
    guidance: float
    negative_prompt: str
    scheduler: str

    @property
    def steps_run(self) -> int:
        """What diffusers' img2img actually runs: ``int(steps * strength)``."""
        return min(int(self.steps * self.strength), self.steps)


def _table_entry(value: str) -> tuple[str, str] | None:
    """(short name, catalogue entry) of a model in the table, by short name, entry or repo id."""
    key = sd_model_spec(value).lower()
    for short, entry in SD_MODELS.items():
        if key in (short, entry.name, str(entry.hf_repo).lower()):
            return short, entry.name
    return None


def resolve_model(value: str | None, settings: "EngineSettings") -> ModelChoice:
    """Option ``model`` as a catalogue entry; only the operator's choices are allowed.

    Allowed: the table's short names (and their repo ids) and the server's own model
    (``STYLEBOT_SD_MODEL``, however the operator spelled it). Anything else is refused,
    so a chat user can never make the server fetch or open an arbitrary model.
    """
    server = ModelChoice(SD_SERVER_MODEL, settings.sd_model, sd_model_spec(settings.sd_model))
    if value is None or value.strip().lower() in ("", "default"):
        return server
    wanted = value.strip()
    if wanted == settings.sd_model or sd_model_spec(wanted) == server.spec:
        return server
    table = _table_entry(wanted)
    if table is None:
        raise OptionError(f"Option 'model' must be one of {', '.join(SD_MODELS)} or default "
                          f"(the server's model); got {wanted!r}.")
    short, entry = table
    return ModelChoice(entry, short, str(SD_MODELS[short].hf_repo))


def make_plan(options: dict[str, Any], settings: "EngineSettings", *, prompt: str | None = None,
              content_size: tuple[int, int] | None = None) -> Plan:
    """Check the options against each other and the chosen model; one clear line per problem."""
    model = resolve_model(options.get("model"), settings)
    profile = profile_for(model.spec)
    label = model.label
    strength = float(options.get("strength", 0.5))
    steps = options.get("steps") or profile.steps
    guidance = options.get("guidance_scale")
    guidance = profile.guidance if guidance is None else float(guidance)
    negative = (options.get("negative_prompt") or "").strip()
    scheduler = options.get("scheduler") or "default"

    if profile.turbo and guidance > 1:
        raise OptionError(f"Option 'guidance_scale' must be at most 1 for model '{label}' "
                          f"(a turbo model runs without guidance; 0 is usual); got {guidance:g}.")
    if steps > profile.max_steps:
        raise OptionError(f"Option 'steps' must be 1..{profile.max_steps} for model '{label}'; "
                          f"got {steps}.")
    if negative and guidance <= 1:
        raise OptionError("Option 'negative_prompt' only works with guidance_scale above 1"
                          + (f"; model '{label}' runs without guidance, so leave it out."
                             if profile.turbo else "; raise guidance_scale or leave it out."))
    for name, text in (("prompt", prompt or ""), ("negative prompt", negative)):
        if len(text) > MAX_PROMPT_CHARS:
            raise OptionError(f"The {name} is {len(text)} characters; keep it under "
                              f"{MAX_PROMPT_CHARS} (the model reads about 60 words).")
    if strength > 0 and int(steps * strength) < 1:
        raise OptionError(_too_few_steps(steps, strength, profile.max_steps))
    if content_size is not None and min(content_size) < MIN_SIDE:
        width, height = content_size
        raise OptionError(f"The image is {width}x{height} px; sd needs both sides at least "
                          f"{MIN_SIDE} px (raise option 'size' or send a less narrow image).")
    return Plan(model=model, profile=profile, strength=strength, steps=steps,
                guidance=guidance, negative_prompt=negative, scheduler=scheduler)


def _too_few_steps(steps: int, strength: float, max_steps: int) -> str:
    need = math.ceil(1 / strength)
    while int(need * strength) < 1:
        need += 1
    fix = (f"use steps {need} or more, or strength {1 / steps:.2g} or more" if need <= max_steps
           else f"use strength {1 / steps:.2g} or more")
    return (f"Options 'steps' x 'strength' must reach 1 for any denoising step to run "
            f"({steps} x {strength:g} = {steps * strength:.2g}); {fix}.")


class StableDiffusionMethod(Method):
    name = "sd"
    title = "Stable Diffusion (text prompt)"
    summary = ("Repaints your photo as the prompt describes (\"as a watercolour\"), keeping its "
               "layout; strength sets how far it may move from the original.")
    options = OPTIONS
    needs_prompt = True
    needs_gpu = False  # a turbo image takes 20-35 s on 2 idle CPU cores (docs/sd.md)

    def weight_names(self, options: dict[str, Any] | None = None) -> list[str]:
        """The model folder plus the safety checker applied to results (on by default)."""
        model = (options or {}).get("model")
        table = _table_entry(model) if model and model.strip().lower() != "default" else None
        return [table[1] if table else SD_SERVER_MODEL, SD_SAFETY_CHECKER.name]

    def check_options(self, options: dict[str, Any], settings: "EngineSettings") -> None:
        resolve_model(options.get("model"), settings)

    def check(self, inp: MethodInput, settings: "EngineSettings") -> None:
        make_plan(inp.options, settings, prompt=inp.prompt, content_size=inp.content.size)

    def run(self, inp: MethodInput, ctx: RunContext) -> "Image.Image":
        plan = make_plan(inp.options, ctx.settings, prompt=inp.prompt,
                         content_size=inp.content.size)
        if plan.strength == 0:
            # diffusers would still encode and decode through the VAE, which is lossy;
            # strength 0 means "no change", so the photo comes back exactly as given.
            ctx.progress(1.0, "denoising")
            return inp.content.copy()

        # Weights first: a missing model fails in a second, before diffusers' slow import.
        folder = ctx.weights.path(plan.model.entry)
        safety_source = self._safety_source(ctx, folder)

        import torch

        from ..nets import diffusion

        device = str(ctx.device)
        dtype = torch.float16 if ctx.half else torch.float32
        # Built once per (model, dtype, device) and kept, together with its safety filter.
        key = f"sd:{folder}:{dtype}:{device}:safety={safety_source}"
        if key not in ctx.models:
            ctx.progress(0.0, "loading model")
        loaded = ctx.models.get(
            key, lambda: self._load(ctx, plan.model.entry, folder, safety_source, dtype, device))
        pipe = loaded.pipe

        # A fresh scheduler each run: schedulers keep per-run state, the pipeline is shared
        # (jobs run one at a time on the worker).
        config = loaded.scheduler_config
        class_name, overrides = SCHEDULERS.get(plan.scheduler, (config["_class_name"], {}))
        pipe.scheduler = diffusion.make_scheduler(class_name, overrides, config)

        # Previews only where no safety checker judges the result: a preview would show what
        # the checker may then refuse.
        previews = loaded.safety is None

        def on_step_end(pipeline, step: int, timestep, tensors: dict) -> dict:
            preview = latent_preview(tensors["latents"]) if previews else None
            ctx.progress((step + 1) / max(pipeline.num_timesteps, 1), "denoising", preview)
            return {}

        generator = torch.Generator(device=device).manual_seed(inp.seed)
        started = time.perf_counter()
        with torch.inference_mode():
            result = pipe(
                prompt=inp.prompt or "", image=inp.content, strength=plan.strength,
                num_inference_steps=plan.steps, guidance_scale=plan.guidance,
                negative_prompt=plan.negative_prompt or None, generator=generator,
                callback_on_step_end=on_step_end, output_type="pil",
            ).images[0]
        log.info("sd %s: %d of %d steps, guidance %g, scheduler %s, seed %d, %.2f s",
                 plan.model.label, plan.steps_run, plan.steps, plan.guidance, plan.scheduler,
                 inp.seed, time.perf_counter() - started)
        if loaded.safety is not None and loaded.safety.flags(result):
            log.warning("sd result flagged by the safety checker (model %s, seed %d)",
                        plan.model.label, inp.seed)
            raise UserError(FLAGGED_MESSAGE)
        if result.size != inp.content.size:  # the VAE works in multiples of 8 pixels
            from PIL import Image

            result = result.resize(inp.content.size, Image.Resampling.LANCZOS)
        return result

    @staticmethod
    def _safety_source(ctx: RunContext, folder: Path) -> Path | None:
        """The model's own checker if it ships one, else the catalogue's; None if turned off."""
        if not ctx.settings.sd_safety_checker:
            return None
        if (folder / "safety_checker").is_dir():
            return folder
        return ctx.weights.path(SD_SAFETY_CHECKER.name)

    @staticmethod
    def _load(ctx: RunContext, entry: str, folder: Path, safety_source: Path | None,
              dtype, device):
        from ..nets import diffusion

        try:
            pipe = diffusion.load_pipeline(folder, dtype=dtype, device=device)
        except (OSError, ValueError, KeyError) as exc:  # e.g. an interrupted download
            log.warning("sd model %s in %s did not load: %s", entry, folder, exc)
            reason = f"the folder {folder} is incomplete or not a diffusers model"
            raise ctx.weights.missing_error(ctx.weights.entry(entry), reason=reason) from exc
        safety = None
        if safety_source is not None:
            try:
                safety = diffusion.load_safety_filter(safety_source, dtype=dtype, device=device)
            except (OSError, ValueError, KeyError) as exc:
                checker = entry if safety_source == folder else SD_SAFETY_CHECKER.name
                log.warning("sd safety checker in %s did not load: %s", safety_source, exc)
                reason = f"the folder {safety_source} holds no complete safety checker"
                raise ctx.weights.missing_error(ctx.weights.entry(checker), reason=reason) from exc
        else:
            log.warning("sd safety checker is off (STYLEBOT_SD_SAFETY_CHECKER=false): "
                        "results of %s are posted unfiltered", entry)
        return diffusion.LoadedModel(pipe, dict(pipe.scheduler.config), safety)


# A linear map from Stable Diffusion's four latent channels to RGB (the well-known
# approximation that previews use): a picture of where denoising is going, for the cost of
# a matrix product instead of a VAE decode. SDXL's latents map a little differently; the
# preview is a preview.
LATENT_RGB = ((0.298, 0.207, 0.208), (0.187, 0.286, 0.173),
              (-0.158, 0.189, 0.264), (-0.184, -0.271, -0.473))


def latent_preview(latents: "torch.Tensor") -> "Image.Image | None":
    """The first image's latents as a small RGB picture (one pixel per latent cell)."""
    import torch

    from ..images import to_image

    if latents.ndim != 4 or latents.shape[1] != len(LATENT_RGB):
        return None
    factors = torch.tensor(LATENT_RGB, dtype=torch.float32, device=latents.device)
    rgb = torch.einsum("chw,cr->rhw", latents[0].float(), factors)
    return to_image(((rgb + 1) / 2).clamp(0, 1))
