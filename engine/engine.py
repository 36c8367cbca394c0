"""The GPU engine: turns requests into validated jobs and runs them on the one device.

``prepare`` does everything that can refuse a request (method, options, images, limits)
before it is queued, so users hear about mistakes at once. ``execute`` runs a batch of
prepared jobs in the worker thread, retrying once at a smaller size on out-of-memory.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .errors import ImageError, OptionError, UserError
from .images import decode_image, image_pixels, resize_to_side
from .memory import release_memory
from .methods import DEFAULT_METHOD, Method, get_method, loadable_methods
from .methods.base import MethodInput, RunContext, normalise_style_weights
from .models import ModelCache
from .request import ImageUpload, StyleRequest
from .settings import EngineSettings
from .device_turns import DeviceTurns
from .video import Clip, decode_clip, is_clip, smooth_frames
from .weights import WeightStore

if TYPE_CHECKING:
    import threading

    from PIL import Image

log = logging.getLogger(__name__)

OOM_RETRY_SCALE = 0.7


@dataclass
class PreparedJob:
    """A request that passed every check: decoded images, typed options, a seed."""

    method: Method
    input: MethodInput
    request: StyleRequest

    @property
    def options(self) -> dict[str, Any]:
        return self.input.options

    def batch_key(self) -> tuple | None:
        if not self.method.batchable or self.input.clip is not None:  # a clip batches its own frames
            return None
        key = self.method.batch_key(self.input)
        return None if key is None else (self.method.name, key)


ProgressFn = Callable[[float, str, "Image.Image | None"], None]


class StyleEngine:
    """Hosts every method on one device, with one weight store and one model cache."""

    def __init__(self, settings: EngineSettings, weights: WeightStore | None = None,
                 device: str | None = None) -> None:
        self.settings = settings
        self.weights = weights or WeightStore.from_settings(settings)
        self.models = ModelCache(settings.model_memory_mb * 1_000_000)
        self.turns = DeviceTurns()  # background training yields the device to these jobs
        self._device = device
        self._threads_set = False

    @property
    def device(self) -> str:
        """The device, resolved on first use; on a CPU, torch's threads are set then (once)."""
        if self._device is None:
            from .device import resolve_device

            self._device = resolve_device(self.settings.device)
        if not self._threads_set:
            self._threads_set = True
            if self._device == "cpu":
                from .device import set_torch_cpu_threads

                log.info("torch on cpu: %d intra-op threads", set_torch_cpu_threads(self.settings))
        return self._device

    # -- before queueing -------------------------------------------------------------

    def prepare(self, request: StyleRequest) -> PreparedJob:
        """Validate and decode ``request``; raise ``UserError`` with the reason if unusable."""
        method = get_method(request.method or DEFAULT_METHOD)
        options = method.options.validate(request.options, method=method.name)
        options = method.resolve_defaults(options, self.weights)
        has_prompt = bool(request.prompt and request.prompt.strip())
        method.check_inputs(n_styles=len(request.styles), has_prompt=has_prompt,
                            has_mask=request.mask is not None)
        clip_upload = is_clip(request.content.data)
        if clip_upload and not method.takes_clips:
            takers = ", ".join(m.name for m in loadable_methods() if m.takes_clips)
            raise UserError(f"Method '{method.name}' takes still images only; for an animation "
                            f"or video use {takers}.")
        if request.init_image is not None and (not method.takes_init_image or clip_upload):
            raise OptionError(f"Method '{method.name}' cannot start from a given image"
                              + (" for an animation or video." if clip_upload else "."))
        if self.needs_missing_gpu(method):
            raise UserError(f"Method '{method.name}' needs a GPU and this server has none; "
                            "try 'hub' or 'fast' instead.")

        requested_size = options.get("size")
        if requested_size is not None and requested_size > self.settings.max_side:
            raise OptionError(f"Option 'size' is {requested_size}, above this server's limit of "
                              f"{self.settings.max_side} pixels.")
        uploads = [request.content, *request.styles] + [u for u in (request.mask, request.init_image)
                                                          if u is not None]
        self.check_request_pixels(uploads)
        # Each upload is decoded straight to its working size, one at a time.
        side = requested_size or self.settings.max_side
        clip = self.decode_clip(request.content, fit=side) if clip_upload else None
        if clip is not None:
            if requested_size:
                clip = clip.with_frames([resize_to_side(f, requested_size) for f in clip.frames])
            content = clip.frames[0]
        else:
            content = self.decode(request.content, "content image", fit=side)
            if requested_size:
                content = resize_to_side(content, requested_size)  # enlarges a smaller one
        styles = self.decode_styles(request.styles, self.settings.max_side)
        mask = (self.decode(request.mask, "mask", fit=side).convert("L")
                if request.mask is not None else None)
        init_image = (_sized(self.decode(request.init_image, "start image", fit=side), content.size)
                      if request.init_image is not None else None)
        release_memory()  # the decoders' full-width buffers, freed in this (pool) thread
        weights = normalise_style_weights(request.style_weights, len(styles))
        seed = options.get("seed")
        if seed is None:
            seed = random.randrange(2**31)
        options = {**options, "seed": seed} if "seed" in options else options
        inp = MethodInput(content=content, options=options, seed=seed, size=max(content.size),
                          styles=styles, style_weights=weights,
                          prompt=request.prompt.strip() if has_prompt else None, mask=mask,
                          clip=clip, own_models=request.own_models,
                          init_image=init_image)
        method.check_sizes(inp)
        method.check(inp, self.settings)
        return PreparedJob(method=method, input=inp, request=request)

    def needs_missing_gpu(self, method: Method) -> bool:
        """True when ``method`` would be refused here for want of a GPU."""
        return method.needs_gpu and not self.runs_on_gpu and not self._cpu_allowed(method)

    @property
    def runs_on_gpu(self) -> bool:
        """Whether jobs run on a GPU: this machine's device, or Ray replicas given GPUs
        (the bot process itself may have none)."""
        if self.settings.engine == "ray":
            return self.settings.ray_gpus_per_replica > 0
        return self.device != "cpu"

    def _cpu_allowed(self, method: Method) -> bool:
        return method.name == "nada" and self.settings.allow_cpu_nada

    def decode(self, upload: ImageUpload, what: str, fit: int | None = None) -> "Image.Image":
        """An upload as RGB, under this server's byte and pixel limits; with ``fit``, decoded
        straight to at most ``fit`` pixels on its longest side."""
        return decode_image(upload.data, what=what, max_bytes=self.settings.max_upload_bytes,
                            max_pixels=self.settings.max_pixels, fit=fit)

    def decode_clip(self, upload: ImageUpload, fit: int) -> Clip:
        """An animation or video as frames fitted to ``fit``, under the image limits and the
        server's frame-count and duration limits."""
        s = self.settings
        return decode_clip(upload.data, max_bytes=s.max_upload_bytes, max_pixels=s.max_pixels,
                           max_frames=s.max_frames, max_seconds=s.max_video_s, fit=fit)

    def decode_styles(self, uploads: list[ImageUpload], max_side: int) -> list["Image.Image"]:
        """Style uploads decoded to fit within ``max_side``; numbered in errors when several."""
        self.check_request_pixels(uploads)
        return [self.decode(u, f"style image {i + 1}" if len(uploads) > 1 else "style image", fit=max_side)
                for i, u in enumerate(uploads)]

    def check_request_pixels(self, uploads: list[ImageUpload]) -> None:
        """Refuse, from the headers alone, images that together take too long to decode."""
        total = sum(image_pixels(u.data) for u in uploads)
        limit = self.settings.max_request_pixels
        if total > limit:
            held = f"These {len(uploads)} images hold" if len(uploads) > 1 else "The image holds"
            raise ImageError(f"{held} {total / 1e6:.3g} megapixels together; "
                             f"the limit per request is {limit / 1e6:.3g} megapixels.")

    # -- in the worker thread --------------------------------------------------------

    def context(self, on_progress: ProgressFn | None, cancel_event: "threading.Event") -> RunContext:
        return RunContext(device=self.device, settings=self.settings, weights=self.weights,
                          models=self.models, on_progress=on_progress, cancel_event=cancel_event)

    def execute(self, jobs: list[PreparedJob], ctx: RunContext) -> list["Image.Image | Clip"]:
        """Run jobs sharing one batch key (or a single job); retry smaller once on OOM.
        A clip job (always alone) gives a ``Clip`` of the same kind back."""
        try:
            with self.turns.interactive():
                return self._execute(jobs, ctx)
        finally:
            release_memory()  # what the method freed stays in this thread's arena otherwise

    def _execute(self, jobs: list[PreparedJob], ctx: RunContext) -> list[Any]:
        from .device import free_cached_memory, is_out_of_memory

        method = jobs[0].method
        inputs = [job.input for job in jobs]
        try:
            return self._run(method, inputs, ctx)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            log.warning("out of memory running %s on %s (%d job(s)); retrying smaller",
                        method.name, self.device, len(jobs))
        free_cached_memory()
        smaller = [self._shrunk(inp) for inp in inputs]
        try:
            results: list[Any] = [self._run(method, [inp], ctx)[0] for inp in smaller]
        except Exception as exc:
            if is_out_of_memory(exc):
                free_cached_memory()
                raise UserError("The GPU ran out of memory for this image, even at a smaller "
                                "size; try a smaller size option.") from exc
            raise
        return results

    def _run(self, method: Method, inputs: list[MethodInput], ctx: RunContext) -> list[Any]:
        started = time.perf_counter()
        if inputs[0].clip is not None:
            return [self._run_clip(method, inputs[0], ctx)]
        results = method.run_batch(inputs, ctx) if len(inputs) > 1 else [method.run(inputs[0], ctx)]
        log.debug("%s ran %d job(s) in %.2fs", method.name, len(inputs), time.perf_counter() - started)
        return results

    @staticmethod
    def _run_clip(method: Method, inp: MethodInput, ctx: RunContext) -> Clip:
        """Every frame restyled, then smoothed over time as the ``smooth`` option asks."""
        assert inp.clip is not None
        started = time.perf_counter()
        frames = method.run_clip(inp, ctx)
        frames = smooth_frames(inp.clip.frames, frames, float(inp.options.get("smooth") or 0.0))
        log.debug("%s ran a clip of %d frames in %.2fs", method.name, len(frames),
                  time.perf_counter() - started)
        return inp.clip.with_frames(frames)

    @staticmethod
    def _shrunk(inp: MethodInput) -> MethodInput:
        side = max(16, int(inp.size * OOM_RETRY_SCALE))
        content = resize_to_side(inp.content, side)
        clip = (inp.clip.with_frames([resize_to_side(f, side) for f in inp.clip.frames])
                if inp.clip is not None else None)
        init_image = _sized(inp.init_image, content.size) if inp.init_image is not None else None
        return MethodInput(content=content, options=inp.options, seed=inp.seed, size=max(content.size),
                           styles=inp.styles, style_weights=inp.style_weights, prompt=inp.prompt,
                           mask=inp.mask, clip=clip, own_models=inp.own_models,
                           init_image=init_image)



def _sized(image: "Image.Image", size: tuple[int, int]) -> "Image.Image":
    """``image`` at exactly ``size``: a start image must line up with the content pixel for pixel."""
    from PIL import Image

    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)
