"""The interface every style-transfer method implements.

A method is a small class: it declares its options and the weight files it needs, and
turns one decoded ``MethodInput`` into one PIL image. The engine owns everything around
that (queueing, devices, model caching, progress plumbing, cancellation, OOM retry).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Hashable

from ..errors import ImageError, JobCancelled, OptionError
from ..options import OptionSet

if TYPE_CHECKING:
    from pathlib import Path

    from PIL import Image

    from ..models import ModelCache
    from ..settings import EngineSettings
    from ..video import Clip
    from ..weights import WeightStore


def normalise_style_weights(raw: list[float] | None, n_styles: int) -> list[float]:
    """One weight per style image, summing to 1; equal weights when none were given.

    The one place that checks style weights: the engine calls it before queueing, and
    methods call it (through ``MethodInput.style_mix``) when run directly.
    """
    if n_styles == 0:
        return []
    if not raw:
        return [1.0 / n_styles] * n_styles
    if len(raw) != n_styles:
        raise OptionError(f"Got {len(raw)} style_weights for {n_styles} style image"
                          f"{'s' if n_styles != 1 else ''}; give one weight per style image.")
    try:
        weights = [float(w) for w in raw]
    except (TypeError, ValueError):
        raise OptionError(f"style_weights must be numbers >= 0, got {list(raw)!r}.") from None
    if any(not (0.0 <= w < float("inf")) for w in weights) or sum(weights) <= 0:
        raise OptionError("style_weights must be numbers >= 0, and not all zero.")
    total = sum(weights)
    return [w / total for w in weights]


@dataclass
class MethodInput:
    """A request after decoding and validation: what a method actually works on.

    ``content`` is RGB and already fits ``size`` (longest side); ``styles`` are RGB at
    their own size (capped by the engine); ``options`` are validated and typed; ``seed``
    is always set (chosen at random when the user gave none, and reported back).
    For a clip, ``clip`` holds every frame (at the working size) and ``content`` is frame 0,
    so every check made on a still's content holds for the clip. ``own_models`` is the
    requester's own trained networks (``StyleRequest.own_models``).
    ``init_image``, when the request gave one, is RGB at exactly the content's size.
    """

    content: "Image.Image"
    options: dict[str, Any]
    seed: int
    size: int
    styles: list["Image.Image"] = field(default_factory=list)
    style_weights: list[float] = field(default_factory=list)
    prompt: str | None = None
    mask: "Image.Image | None" = None
    clip: "Clip | None" = None
    own_models: "Path | None" = None
    init_image: "Image.Image | None" = None

    def style_mix(self) -> list[float]:
        """How much each style image counts, summing to 1."""
        return normalise_style_weights(self.style_weights, len(self.styles))


class RunContext:
    """What a running method may use: device, weights, model cache, progress, cancellation.

    ``progress`` is safe to call from the worker thread; it also raises ``JobCancelled``
    once the job was cancelled, so a method that reports progress each step stops at the
    next step without extra code.
    """

    def __init__(self, *, device: Any, settings: "EngineSettings", weights: "WeightStore",
                 models: "ModelCache",
                 on_progress: Callable[[float, str, "Image.Image | None"], None] | None = None,
                 cancel_event: threading.Event | None = None) -> None:
        self.device = device
        self.settings = settings
        self.weights = weights
        self.models = models
        self._on_progress = on_progress
        self.cancel_event = cancel_event or threading.Event()

    @property
    def half(self) -> bool:
        """Whether fp16 is worth using: on CUDA and allowed by settings."""
        return self.settings.half_precision and str(self.device).startswith("cuda")

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled()

    def progress(self, fraction: float, stage: str = "",
                 preview: "Image.Image | None" = None) -> None:
        self.check_cancelled()
        if self._on_progress is not None:
            self._on_progress(min(max(float(fraction), 0.0), 1.0), stage, preview)

    def span(self, lo: float, hi: float, stage: str) -> "RunContext":
        """This context with progress mapped into ``lo..hi`` and reported as ``stage``: a
        method's own 0..1 for one batch of frames becomes a slice of the clip's progress."""
        def on_progress(fraction: float, _stage: str, preview) -> None:
            if self._on_progress is not None:
                self._on_progress(lo + (hi - lo) * fraction, stage, preview)

        return RunContext(device=self.device, settings=self.settings, weights=self.weights,
                          models=self.models, on_progress=on_progress,
                          cancel_event=self.cancel_event)


class Method(ABC):
    """One style-transfer method. Subclasses set the class attributes and ``run``.

    Modules defining methods import torch and friends inside functions, not at the top,
    so that listing methods and options stays fast.
    """

    name: ClassVar[str]
    title: ClassVar[str]  # a few words for menus
    summary: ClassVar[str]  # one or two sentences for `stylebot methods` and /methods
    options: ClassVar[OptionSet]
    min_styles: ClassVar[int] = 0
    max_styles: ClassVar[int] = 0
    needs_prompt: ClassVar[bool] = False
    # With needs_prompt: a style image may stand in for the prompt; exactly one of them is given.
    style_replaces_prompt: ClassVar[bool] = False
    uses_mask: ClassVar[bool] = False
    # The smallest side the networks can take (padding and downsampling need pixels);
    # smaller pictures are refused before queueing. 1: the method pads tiny ones itself.
    min_side: ClassVar[int] = 1
    min_style_side: ClassVar[int] = 1
    batchable: ClassVar[bool] = False
    takes_clips: ClassVar[bool] = False  # feed-forward methods: every frame of a clip, batched
    needs_gpu: ClassVar[bool] = False  # refused on CPU unless the settings allow it
    takes_init_image: ClassVar[bool] = False  # may start from a given picture (``MethodInput.init_image``)

    def weight_names(self, options: dict[str, Any] | None = None) -> list[str]:
        """Catalogue names this method needs for ``options`` (``None``: its defaults)."""
        return []

    def check_sizes(self, inp: MethodInput) -> None:
        """Refuse a content or style picture smaller than the networks can take, naming the minimum."""
        pictures = [("content image", inp.content, self.min_side)]
        pictures += [(f"style image {i + 1}" if len(inp.styles) > 1 else "style image", style,
                      self.min_style_side) for i, style in enumerate(inp.styles)]
        for what, image, minimum in pictures:
            if min(image.size) < minimum:
                raise ImageError(f"The {what} is {image.width}x{image.height} pixels; method "
                                 f"'{self.name}' needs at least {minimum} pixels on each side.")

    def check_options(self, options: dict[str, Any], settings: "EngineSettings") -> None:
        """Refuse option values the declared ranges cannot express (a model this server does
        not have, a malformed list); raise ``OptionError``. Runs without images, so presets
        are checked when saved, not when first used."""

    def check_options_of(self, options: dict[str, Any], settings: "EngineSettings",
                         own_models: "Path | None") -> None:
        """``check_options`` for one requester, whose own trained networks are in
        ``own_models``; only methods that load such networks need to look."""
        self.check_options(options, settings)

    def resolve_defaults(self, options: dict[str, Any], weights: "WeightStore") -> dict[str, Any]:
        """``options`` with the defaults that depend on what is installed filled in.

        The engine calls this before queueing, so the job runs and reports (result options,
        chat, CLI) what was actually used, e.g. fast's model when its first choice is absent.
        """
        return options

    def available_models(self, weights: "WeightStore",
                         settings: "EngineSettings") -> list[str] | None:
        """The values of option ``model`` usable here without a download; None: no such option."""
        return None

    def own_model_names(self, own_models: "Path | None") -> list[str]:
        """The requester's own trained networks this method can load from ``own_models``."""
        return []

    def check(self, inp: MethodInput, settings: "EngineSettings") -> None:
        """Refuse inputs the option ranges cannot express; raise ``OptionError``."""
        self.check_options(inp.options, settings)

    def check_inputs(self, *, n_styles: int, has_prompt: bool, has_mask: bool) -> None:
        """The engine calls this before queueing: wrong number of inputs is the user's error."""
        if n_styles < self.min_styles:
            need = "a style image" if self.min_styles == 1 else f"at least {self.min_styles} style images"
            raise OptionError(f"Method '{self.name}' needs {need}.")
        if n_styles > self.max_styles:
            if self.max_styles == 0:
                raise OptionError(f"Method '{self.name}' takes no style image.")
            raise OptionError(f"Method '{self.name}' takes at most {self.max_styles} style images.")
        if self.style_replaces_prompt and (n_styles > 0) == has_prompt:
            raise OptionError(self.prompt_or_style_refusal(has_prompt))
        if self.needs_prompt and not has_prompt and not (self.style_replaces_prompt and n_styles):
            raise OptionError(f"Method '{self.name}' needs a text prompt.")
        if has_mask and not self.uses_mask:
            raise OptionError(f"Method '{self.name}' does not take a mask.")

    def prompt_or_style_refusal(self, has_prompt: bool) -> str:
        """For ``style_replaces_prompt`` methods: the line refusing both, or neither."""
        if has_prompt:
            return (f"Method '{self.name}' takes a text prompt or a style image, not both; "
                    "remove one.")
        return f"Method '{self.name}' needs a text prompt or a style image."

    @abstractmethod
    def run(self, inp: MethodInput, ctx: RunContext) -> "Image.Image":
        """Restyle one input. Call ``ctx.progress`` regularly; it handles cancellation."""

    def batch_key(self, inp: MethodInput) -> Hashable | None:
        """Jobs with equal non-None keys may be run together by ``run_batch``."""
        return None

    def run_batch(self, inputs: list[MethodInput], ctx: RunContext) -> list["Image.Image"]:
        return [self.run(inp, ctx) for inp in inputs]

    def prepare_clip(self, inp: MethodInput, ctx: RunContext) -> Any:
        """What a clip's frames share, computed once per job (a style vector, style
        statistics); handed to every ``run_frames`` call of the clip."""
        return None

    def run_frames(self, inputs: list[MethodInput], ctx: RunContext, shared: Any) -> list["Image.Image"]:
        """Restyle a batch of one clip's frames with ``prepare_clip``'s ``shared``."""
        return self.run_batch(inputs, ctx)

    def run_clip(self, inp: MethodInput, ctx: RunContext) -> list["Image.Image"]:
        """Every frame of ``inp.clip``, ``max_batch`` frames a forward pass; progress (and so
        cancellation) between batches, counted in frames."""
        assert inp.clip is not None
        frames = inp.clip.frames
        total, step = len(frames), max(1, ctx.settings.max_batch)
        ctx.progress(0.0, "reading style")
        shared = self.prepare_clip(inp, ctx)
        out: list["Image.Image"] = []
        for start in range(0, total, step):
            batch = [replace(inp, content=frame, clip=None) for frame in frames[start:start + step]]
            stage = f"frame {start + len(batch)}/{total}"
            out += self.run_frames(batch, ctx.span(start / total, (start + len(batch)) / total, stage),
                                   shared)
            ctx.progress(len(out) / total, stage)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "summary": self.summary,
            "min_styles": self.min_styles, "max_styles": self.max_styles,
            "needs_prompt": self.needs_prompt,
            "style_replaces_prompt": self.style_replaces_prompt, "uses_mask": self.uses_mask,
            "needs_gpu": self.needs_gpu, "takes_clips": self.takes_clips,
            "options": [o.to_dict() for o in self.options],
        }
