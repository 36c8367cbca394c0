"""`quality=refine`: a real-time draft within seconds, then gatys started from it replaces it.

The one place that says what a refine request becomes, for every front end and the CLI: a
draft job with a feed-forward method (adain where its weights are here, else hub), then a
gatys job whose start image is the draft. The draft takes only what it shares with gatys
(size, seed, preserve_color); every gatys option (iterations, style_weight, ...) goes to
the refinement. Stopping keeps the draft as the result. The engine knows nothing of this:
it only lets gatys start from a given picture (``StyleRequest.init_image``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from engine.errors import OptionError, UserError
from engine.events import Cancelled, Done, Progress, Started, is_final
from engine.methods import get_method
from engine.request import ImageUpload, StyleRequest

from . import results
from .results import progress_bar

if TYPE_CHECKING:
    from PIL import Image

    from engine.engine import StyleEngine
    from engine.queue import JobHandle

log = logging.getLogger(__name__)

QUALITY = "quality"  # the request option that asks for it; never reaches a method
FULL, REFINE = "full", "refine"
QUALITIES = (FULL, REFINE)
REFINER = "gatys"
DRAFTERS = ("adain", "hub")  # the first one whose weights are here makes the draft
SHARED = ("size", "seed", "preserve_color")  # what the draft takes from the request, if it has it
STOP = results.STOP  # the button under a draft being refined (its owner's: results.check_clicker)
STOPPED = "refining stopped"  # the refinement's cancel reason: the draft is kept


def take_quality(options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(quality, the options without it); a value other than full or refine is refused."""
    rest = {k: v for k, v in options.items() if k != QUALITY}
    raw = options.get(QUALITY)
    if raw is None or str(raw).strip() == "":
        return FULL, rest
    value = str(raw).strip().lower()
    if value not in QUALITIES:
        raise OptionError(f"Option 'quality' is '{str(raw)[:20]}'; it must be one of: "
                          f"{', '.join(QUALITIES)}.")
    return value, rest


def wants_refine(request: StyleRequest) -> bool:
    return take_quality(request.options)[0] == REFINE


def without_quality(request: StyleRequest) -> StyleRequest:
    """A plain (quality=full) request as its method takes it."""
    if QUALITY not in request.options:
        return request
    return dataclasses.replace(request, options=take_quality(request.options)[1])


def method_for(method: str | None, options: dict[str, Any]) -> str | None:
    """A refine request's method when it names none (gatys, before any default stands in)."""
    if not (method or "").strip() and take_quality(options)[0] == REFINE:
        return REFINER
    return method


def refined_method(method: str | None) -> str:
    """The method of a refine request: gatys, named or not; any other is refused."""
    name = (method or "").strip().lower() or REFINER
    if name != REFINER:
        raise OptionError(f"quality=refine drafts at once and then refines with {REFINER}; "
                          f"leave out the method or use method:{REFINER} (not '{method}').")
    return name


def check_options(options: dict[str, Any]) -> None:
    """Refuse what a refinement cannot honour: it always starts from the draft."""
    if "init" in options:
        raise OptionError("quality=refine starts from the draft; leave out init.")


def pick_drafter(engine: "StyleEngine") -> str:
    """The first of ``DRAFTERS`` that can run here without downloading; else the last one
    (whose own refusal then tells the user what is missing)."""
    for name in DRAFTERS:
        method = get_method(name)
        needed = method.weight_names(method.resolve_defaults(method.options.defaults(), engine.weights))
        if not engine.needs_missing_gpu(method) and all(
                engine.weights.locate(w)[0] != "missing" for w in needed):
            return name
    return DRAFTERS[-1]


@dataclass(frozen=True)
class RefinePlan:
    """A refine request split in two: the draft to run now, the refinement once it is done."""

    draft: StyleRequest
    refinement: StyleRequest  # its init_image is the draft, filled in by ``start_from``

    def start_from(self, draft: "Image.Image") -> StyleRequest:
        """The refinement request, starting from the finished draft's pixels (lossless PNG)."""
        from engine.images import encode_png

        return dataclasses.replace(self.refinement,
                                   init_image=ImageUpload(encode_png(draft), "draft.png"))


def plan(request: StyleRequest, drafter: str) -> RefinePlan:
    """What a (checked, preset- and place-filled) refine request becomes."""
    _, options = take_quality(request.options)
    draft_options = get_method(drafter).options
    shared = {k: options[k] for k in SHARED if k in options and k in draft_options}
    draft = dataclasses.replace(request, method=drafter, options=shared, preset=None, init_image=None)
    refinement = dataclasses.replace(request, method=REFINER, options=options)
    return RefinePlan(draft, refinement)


class Refinement:
    """A refine request in flight: its draft job, then the gatys job started from the draft.

    Started by the service when the draft is queued, so the refinement runs whether or not a
    front end is still following. ``stop`` keeps the draft: the refinement is never queued,
    or is cancelled.
    """

    def __init__(self, draft: "JobHandle", plan: RefinePlan,
                 submit: Callable[[StyleRequest], Awaitable["JobHandle"]]) -> None:
        self.draft = draft
        self.plan = plan
        self.job: "JobHandle | None" = None
        self.stopped = False
        self.problem: str | None = None  # why no refinement runs, for the user
        self._submit = submit
        self._settled = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"stylebot-refine-{draft.id}")

    @property
    def active(self) -> bool:
        """Whether the draft may still be replaced (what its Stop button acts on)."""
        if self.stopped or self.problem is not None:
            return False
        return self.job is None or self.job.final is None

    async def refinement(self) -> "JobHandle | None":
        """The refinement job once queued; None when it never will be (stopped, the draft
        failed, or the queue refused it: ``problem`` says why)."""
        await self._settled.wait()
        return self.job

    async def follow(self, show: Callable[[str], Awaitable[None]],
                     interval_s: float) -> "tuple[JobHandle, Done] | str":
        """Follow the refinement for a front end: ``show`` gets its progress line at most every
        ``interval_s``. The refinement's job and ``Done`` once it made a result; otherwise
        the line saying why the draft stays (stopped, failed, never queued)."""
        job = await self.refinement()
        final = None
        if job is not None:
            last = float("-inf")
            async for event in job.events():
                if isinstance(event, (Started, Progress)):
                    if time.monotonic() - last >= interval_s:
                        last = time.monotonic()
                        await show(refining_text(event.fraction if isinstance(event, Progress) else 0.0))
                elif is_final(event):
                    final = event
        if isinstance(final, Done):
            return job, final
        reason = (final.reason if isinstance(final, Cancelled) else final.message if final is not None
                  else self.problem or STOPPED)
        return kept_text(reason)

    def stop(self) -> None:
        self.stopped = True
        if self.job is not None:
            self.job.cancel(STOPPED)

    async def _run(self) -> None:
        try:
            final = await self.draft.wait()
            if not isinstance(final, Done):
                self.problem = "the draft did not finish"
                return
            if self.stopped:
                return
            request = await asyncio.to_thread(self.plan.start_from, final.image)
            if self.stopped:
                return
            try:
                self.job = await self._submit(request)
            except UserError as exc:
                self.problem = f"the refinement could not start: {exc.message}"
                return
            log.info("job %s refines draft %s", self.job.id, self.draft.id)
            if self.stopped:
                self.job.cancel(STOPPED)
        except Exception:  # noqa: BLE001 - logged; the draft stays the result
            log.exception("refining draft %s failed", self.draft.id)
            self.problem = "the refinement could not start (it has been logged)"
        finally:
            self._settled.set()


# -- what front ends show, the same everywhere (each adds its markup) -----------------------

def refining_text(fraction: float | None, stage: str = "") -> str:
    if fraction is None:
        return "Draft. Refining with gatys: queued…"
    return f"Draft. Refining with gatys {progress_bar(fraction)} {round(fraction * 100)}%"


def kept_text(reason: str | None) -> str:
    """Under a draft that stays the result: stopped, cancelled, failed or never started."""
    return f"Draft kept as the result ({reason})." if reason else "Draft kept as the result."
