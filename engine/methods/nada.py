"""nada: restyle a face photo from a text prompt or a reference image with StyleGAN-NADA (Gal et al. 2021).

Reads top to bottom as the method runs:
1. find and align the face (refuse photos without one clear face before any heavy work);
2. get the StyleGAN2 generator shifted from ``source_text`` to the prompt: from memory, from
   the on-disk cache of adapted generators, or by running the paper's domain adaptation;
3. invert the aligned face into the *unshifted* generator's W+ space;
4. run the shifted generator on that code and paste the result back into the photo.
The networks and losses live in ``engine/nets`` (stylegan2, clip_encoder, nada, projector,
face_align); torch is imported only when the method runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue import NADA_CLIPS, NADA_GENERATORS, VGG19_CAFFE
from ..errors import OptionError, UserError
from ..options import SEED, SIZE, Option, OptionSet
from .base import Method, MethodInput, RunContext

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

CLIP_CHOICES = {"ViT-B-32+ViT-B-16": ("ViT-B-32", "ViT-B-16"), "ViT-B-32": ("ViT-B-32",),
                "ViT-B-16": ("ViT-B-16",)}
GENERATOR_SIZES = {"ffhq-1024": 1024, "ffhq-256": 256}
MAX_PROMPT_CHARS = 300
ADAPT_PREVIEWS = 8  # previews of the generator while it adapts (one extra forward each)
ADAPT_SEED = 2  # adaptation does not depend on the job's seed, so a prompt is adapted once
CACHE_MAX_BYTES = 3 * 1024 ** 3  # adapted generators kept on disk (~25 at 1024 px), LRU by use
CACHE_VERSION = 1  # bump when adaptation changes, to stop serving stale generators
# Rough cost of one step in units of a generator forward+backward, to split the progress bar.
ADAPT_STEP_COST, SELECT_STEP_COST, INVERT_STEP_COST = 6.0, 12.0, 2.0

NEEDS_GPU = ("nada needs a GPU: adapting a StyleGAN2 generator to a new prompt takes minutes on a "
             "GPU but hours on a CPU. Ask the operator to run Stylebot on a GPU, or to set "
             "STYLEBOT_ALLOW_CPU_NADA=true to accept very slow CPU runs.")


def _styled_layer_count(size: int) -> int:
    return 2 * (size.bit_length() - 1 - 2) + 1


class NadaMethod(Method):
    name = "nada"
    title = "Text-guided face restyle (StyleGAN-NADA)"
    summary = ("Restyles the face in a portrait photo as the prompt describes (e.g. 'Pixar "
               "animation style'), by shifting a StyleGAN2 face generator with CLIP. The first "
               "run of a prompt takes minutes on a GPU; repeats are quick.")
    needs_prompt = True
    style_replaces_prompt = True  # a reference picture instead of the prompt (image-guided NADA)
    min_styles = 0
    max_styles = 1
    needs_gpu = True
    options = OptionSet([
        Option("source_text", "str", "photo",
               "What the generator draws now; the prompt says what it should draw instead."),
        Option("iterations", "int", 300, "Domain-adaptation steps (paper: 200-400 for styles).",
               min=1, max=2000, step=50),
        Option("learning_rate", "float", 0.002, "Adam learning rate of the adaptation.",
               min=0.0001, max=0.1, log_scale=True),
        Option("layers", "int", 0,
               "Layers trained per step, picked adaptively (paper Sec. 4.2); 0 trains all.",
               min=0, max=_styled_layer_count(1024), step=1),
        Option("clip_models", "choice", "ViT-B-32+ViT-B-16", "CLIP models that judge the restyle.",
               choices=tuple(CLIP_CHOICES)),
        Option("inversion_steps", "int", 300,
               "Optimisation steps that fit the photo into the generator.",
               min=10, max=2000, step=50),
        Option("generator", "choice", "ffhq-1024", "StyleGAN2 face generator: 1024 px or faster 256 px.",
               choices=tuple(NADA_GENERATORS)),
        SIZE,
        SEED,
    ])

    def weight_names(self, options: dict[str, Any] | None = None) -> list[str]:
        opts = {**self.options.defaults(), **(options or {})}
        clips = [NADA_CLIPS[m] for m in CLIP_CHOICES[opts["clip_models"]]]
        return [NADA_GENERATORS[opts["generator"]], *clips, VGG19_CAFFE]

    def check(self, inp: MethodInput, settings) -> None:
        _check_options(inp)
        if settings.device == "cpu" and not settings.allow_cpu_nada:
            raise UserError(NEEDS_GPU)

    def run(self, inp: MethodInput, ctx: RunContext) -> "Image.Image":
        import torch

        from ..images import to_image, to_tensor
        from ..nets.face_align import crop_aligned, face_crop, paste_back

        device = torch.device(str(ctx.device))
        if device.type == "cpu" and not ctx.settings.allow_cpu_nada:
            raise UserError(NEEDS_GPU)
        _check_options(inp)
        opts = inp.options
        target = _Target.of(inp)
        source = " ".join(str(opts["source_text"]).split())

        crop = face_crop(inp.content)
        ctx.progress(0.0, "loading models")
        generator, latent_avg, generator_id = self._generator(ctx, opts["generator"], device)
        _check_layers(opts["layers"], len(generator.styled_layers()))
        aligned = crop_aligned(inp.content, crop, generator.size)

        plan = _ProgressPlan(opts, adapting=True)
        adapted = self._adapted(ctx, generator, generator_id, source, target, opts, device, plan)

        perceptual = self._perceptual(ctx, device)
        target_image = to_tensor(aligned, device) * 2 - 1
        from ..nets.projector import project

        projection = project(
            generator, target_image, perceptual, steps=opts["inversion_steps"],
            latent_avg=latent_avg, seed=inp.seed,
            on_step=plan.reporter(ctx, "inverting photo", plan.invert_span, opts["inversion_steps"]))
        log.info("nada inversion: loss %.4f -> %.4f", projection.initial_loss, projection.final_loss)

        ctx.progress(plan.invert_span[1], "synthesising", to_image((projection.image + 1) / 2))
        with torch.no_grad():
            styled = adapted(projection.latent)
        result = paste_back(inp.content, to_image((styled + 1) / 2), crop)
        ctx.progress(1.0, "done")
        return result

    # --- models --------------------------------------------------------------------------

    def _generator(self, ctx: RunContext, choice: str, device):
        """The frozen source generator, its stored mean w (if any), and an identity for cache keys."""
        from ..nets.stylegan2 import load_generator

        name = NADA_GENERATORS[choice]
        path = ctx.weights.path(name, progress=_download_progress(ctx, "generator"))
        identity = _file_identity(path)
        architecture = dict(ctx.weights.entry(name).architecture)

        def load():
            generator, latent_avg = ctx.weights.load(
                name, lambda p: load_generator(p, architecture))
            return generator.to(device), latent_avg

        generator, latent_avg = ctx.models.get(f"nada:generator:{identity}:{device}", load)
        return generator, latent_avg, identity

    def _clip_files(self, ctx: RunContext, choice: str) -> list[tuple[Path, str]]:
        """Paths and identities of the chosen CLIP files (fetched if needed, not loaded)."""
        files = []
        for name in CLIP_CHOICES[choice]:
            path = ctx.weights.path(NADA_CLIPS[name], progress=_download_progress(ctx, f"CLIP {name}"))
            files.append((path, _file_identity(path)))
        return files

    def _perceptual(self, ctx: RunContext, device):
        from ..nets.projector import PERCEPTUAL_LAYERS, PerceptualDistance
        from ..vgg_weights import load_vgg

        def load():
            vgg = load_vgg(ctx.weights, up_to=PERCEPTUAL_LAYERS[-1])
            return PerceptualDistance(vgg).to(device)

        return ctx.models.get(f"nada:perceptual:{device}", load)

    def _adapted(self, ctx: RunContext, generator, generator_id: str, source: str, target: "_Target",
                 opts: dict[str, Any], device, plan: "_ProgressPlan"):
        """The generator shifted from ``source`` to ``target``: memory, then disk, then adaptation."""
        from ..nets.stylegan2 import load_generator

        clip_files = self._clip_files(ctx, opts["clip_models"])
        key = AdaptedGeneratorCache.key(
            generator=generator_id, clips=[identity for _, identity in clip_files],
            source=source.lower() if target.image is None else None, target=target.key, iterations=opts["iterations"],
            learning_rate=opts["learning_rate"], layers=opts["layers"], seed=ADAPT_SEED,
            version=CACHE_VERSION)
        memory_key = f"nada:adapted:{key}:{device}"
        if memory_key in ctx.models:
            plan.adapting = False
            return ctx.models.get(memory_key, lambda: None)
        cache = AdaptedGeneratorCache(ctx.settings.home / "cache" / "nada")
        cached = cache.lookup(key)
        if cached is not None:
            plan.adapting = False
            log.info("nada: adapted generator for %r -> %r from disk cache", source, target)
            return ctx.models.get(memory_key, lambda: load_generator(cached)[0].to(device))

        from ..nets.clip_encoder import load_clip
        from ..nets.nada import CLIPDirectionalLoss, adapt

        ctx.progress(0.0, "adapting generator")
        losses = []
        for path, identity in clip_files:  # CLIP is needed only while adapting
            clip = ctx.models.get(f"nada:clip:{identity}:{device}", lambda p=path: load_clip(p, device))
            if target.image is None:
                losses.append((1.0, CLIPDirectionalLoss(clip, source, target.text)))
            else:  # image-guided: the frozen generator's images are the source, not source_text
                losses.append((1.0, CLIPDirectionalLoss.from_images(
                    clip, generator, [target.tensor(device)], seed=ADAPT_SEED)))
        from ..images import to_image

        span, total = plan.adapt_span, opts["iterations"]
        done_steps = [0]

        def on_step(step: int, loss: float) -> None:
            done_steps[0] = step + 1
            report(step, loss)

        def on_sample(image) -> None:  # what the generator is becoming, a few times a run
            fraction = span[0] + (span[1] - span[0]) * done_steps[0] / total
            ctx.progress(fraction, "adapting generator", to_image((image[0] + 1) / 2))

        report = plan.reporter(ctx, "adapting generator", span, total)
        result = adapt(generator, losses, iterations=total, lr=opts["learning_rate"],
                       layers=opts["layers"], seed=ADAPT_SEED, on_step=on_step,
                       on_sample=on_sample, sample_every=max(1, total // ADAPT_PREVIEWS))
        cache.store(key, result.generator, {"source": source, "target": target.describe(),
                                            "iterations": opts["iterations"],
                                            "final_loss": result.losses[-1]})
        return ctx.models.get(memory_key, lambda: result.generator)


def _check_options(inp: MethodInput) -> None:
    """What the option ranges cannot express: the prompt or style image, the source text, layers."""
    prompt = (inp.prompt or "").strip()
    if len(inp.styles) > 1:
        raise OptionError("Method 'nada' takes at most 1 style images.")
    if inp.styles and prompt:
        raise OptionError("Method 'nada' takes a text prompt or a style image, not both; remove one.")
    if inp.styles:
        return _check_source_and_layers(inp)
    if not prompt:
        raise OptionError("Method 'nada' needs a text prompt describing the target style, "
                          "or a style image to copy.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise OptionError(f"The prompt is {len(prompt)} characters; nada takes at most "
                          f"{MAX_PROMPT_CHARS}.")
    _check_source_and_layers(inp)


def _check_source_and_layers(inp: MethodInput) -> None:
    if not str(inp.options.get("source_text", "photo")).strip():
        raise OptionError("Option 'source_text' must not be empty (default: photo).")
    generator = inp.options.get("generator", "ffhq-1024")
    _check_layers(inp.options.get("layers", 0), _styled_layer_count(GENERATOR_SIZES[generator]))


class _Target:
    """What the generator is shifted towards: the prompt's text, or a style image (image-guided)."""

    def __init__(self, text: str | None, image: "Image.Image | None") -> None:
        self.text, self.image = text, image
        self.sha256 = None
        if image is not None:
            digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
            digest.update(image.tobytes())
            self.sha256 = digest.hexdigest()

    @classmethod
    def of(cls, inp: MethodInput) -> "_Target":
        if inp.styles:
            return cls(None, inp.styles[0].convert("RGB"))
        return cls(" ".join((inp.prompt or "").split()), None)

    @property
    def key(self) -> str:
        """The cache key's target: the folded prompt, or the style image's pixels' sha256."""
        return f"image:{self.sha256}" if self.image is not None else str(self.text).lower()

    def describe(self) -> str:
        return f"style image sha256 {self.sha256}" if self.image is not None else str(self.text)

    def tensor(self, device):
        from ..images import to_tensor

        return to_tensor(self.image, device) * 2 - 1

    def __repr__(self) -> str:
        return repr(self.describe())


def _check_layers(layers: int, available: int) -> None:
    if layers > available:
        raise OptionError(f"Option 'layers' is {layers}; this generator has {available} layers, so "
                          f"the allowed range is 0..{available}.")


def _file_identity(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def _download_progress(ctx: RunContext, what: str):
    def report(done: int, total: int | None) -> None:
        ctx.progress(0.0, f"downloading {what} ({done / 1e6:.0f} MB"
                          + (f" of {total / 1e6:.0f} MB)" if total else ")"))
    return report


class _ProgressPlan:
    """Splits the progress bar between adaptation (when needed) and inversion by their cost."""

    def __init__(self, opts: dict[str, Any], adapting: bool) -> None:
        self.opts = opts
        self.adapting = adapting

    def _split(self) -> float:
        if not self.adapting:
            return 0.0
        per_step = ADAPT_STEP_COST + (SELECT_STEP_COST if self.opts["layers"] else 0.0)
        adapt_cost = self.opts["iterations"] * per_step
        return adapt_cost / (adapt_cost + self.opts["inversion_steps"] * INVERT_STEP_COST)

    @property
    def adapt_span(self) -> tuple[float, float]:
        return 0.0, 0.97 * self._split()

    @property
    def invert_span(self) -> tuple[float, float]:
        return 0.97 * self._split(), 0.97

    @staticmethod
    def reporter(ctx: RunContext, stage: str, span: tuple[float, float], total: int):
        """A per-step callback reporting about 100 times per stage (and checking cancellation)."""
        every = max(1, total // 100)
        start, end = span

        def on_step(step: int, loss: float) -> None:
            if step % every == 0 or step == total - 1:
                ctx.progress(start + (end - start) * (step + 1) / total, stage)
            else:
                ctx.check_cancelled()
        return on_step


class AdaptedGeneratorCache:
    """Adapted generators on disk, one rosinality-layout checkpoint per key, LRU by mtime under a cap."""

    def __init__(self, root: Path, max_bytes: int = CACHE_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    @staticmethod
    def key(**parts: Any) -> str:
        blob = json.dumps(parts, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def lookup(self, key: str) -> Path | None:
        path = self.path(key)
        if not path.is_file():
            return None
        os.utime(path)  # mark as recently used
        return path

    def store(self, key: str, generator, meta: dict[str, Any]) -> Path:
        import torch

        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(key)
        state = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=".partial-", suffix=".tmp",
                                         delete=False) as tmp:
            try:
                torch.save({"g_ema": state, "nada": meta}, tmp)
            except BaseException:
                tmp.close()
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, target)  # readers never see a half-written checkpoint
        self.evict(keep=target)
        return target

    def entries(self) -> list[Path]:
        """Cached files, least recently used first."""
        if not self.root.is_dir():
            return []
        return sorted(self.root.glob("*.pt"), key=lambda p: p.stat().st_mtime_ns)

    def evict(self, keep: Path | None = None) -> None:
        entries = self.entries()
        total = sum(p.stat().st_size for p in entries)
        for path in entries:
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            total -= path.stat().st_size
            path.unlink(missing_ok=True)
            log.info("nada cache: evicted %s (cap %.1f GB)", path.name, self.max_bytes / 1e9)
