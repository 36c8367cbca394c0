"""The one door every front end uses: CLI, Discord, Slack and the playground.

Adapters translate platform input into a ``StyleRequest`` and call this service. The
rules that hold on every platform live here once: the chat rate limit, the cheap input
checks made before anything is downloaded, filling requests from presets, what the
buttons under a result do, and the job log. It holds no platform code and no SQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine.engine import StyleEngine
from engine.errors import OptionError, UserError
from engine.events import Cancelled, Done, Failed, JobEvent, Queued, Started
from engine.images import encode_png
from engine.methods import DEFAULT_METHOD, get_method
from engine.methods.base import Method, normalise_style_weights
from engine.queue import Job, JobHandle, JobQueue
from engine.request import ImageUpload, Place, Requester, StyleRequest
from storage import jobs as job_log
from storage import presets as preset_store
from storage import results as result_store
from storage import server_settings as place_store
from storage.db import Database, open_database
from storage.presets import PresetRecord, PresetSummary, StyleBlob

from .kept_results import record_of, result_of
from . import refine
from .limits import RateLimiter
from .listings import describe_methods
from .owners import Owner, is_gone, this_process
from .server_settings import PlaceRules, PlaceSettingsView, parse_changes
from .result_info import ResultInfo, info_of
from .results import INFO, PresetStyle, Result, changed_options, check_clicker, result_actions, variant
from .settings import Settings
from .trained_styles import TrainedStyles
from .training_jobs import TrainingHandle, TrainingJobs

log = logging.getLogger(__name__)

PRESET_STYLE_SIDE = 1024  # stored style images are capped: presets must not bloat the database
LOCAL_PLATFORMS = frozenset({"cli", "playground"})  # the operator's own: no chat rate limit
ETA_SAMPLES = 20  # /queue's ETA: the median of each method's last this many finished runs
RATE_WINDOW_S = 60.0  # settings.chat_rate_limit jobs per chat user per this many seconds
VISIBILITY_KEPT = 1000  # how many recent jobs' public/ephemeral answers are remembered


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    method: str
    position: int  # 0 = running now
    state: str
    eta_s: float | None = None  # until it is done, from recent run times; None: no history yet


class InputError(OptionError):
    """A request's input is wrong; ``field`` says which (options, prompt, styles), for forms."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class StyleService:
    """Presets, submission and job bookkeeping over one engine, queue and database."""

    def __init__(self, settings: Settings, queue: JobQueue, db: Database, *,
                 owner: Owner | None = None) -> None:
        self.settings = settings
        self.owner = owner or this_process()
        self.queue = queue
        self.engine = queue.engine
        self.db = db
        self.limiter = RateLimiter(settings.chat_rate_limit, RATE_WINDOW_S)
        self._ephemeral: OrderedDict[str, bool] = OrderedDict()  # job id -> result is ephemeral
        self._submitting: Counter[tuple[str, str]] = Counter()  # (user key, space) -> in submit()
        self._refinements: OrderedDict[str, refine.Refinement] = OrderedDict()  # by draft job id
        queue.observers.append(self._record_event)
        self.trained = TrainedStyles(settings)
        self.trainings = TrainingJobs(settings, self.engine, self.trained)

    @classmethod
    async def open(cls, settings: Settings, *, engine: StyleEngine | None = None,
                   owner: Owner | None = None) -> "StyleService":
        try:
            settings.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"The data folder '{settings.home}' (STYLEBOT_HOME) cannot be used: "
                            f"{exc.strerror or exc}.") from None
        db = await open_database(settings.resolved_database_url)
        interrupted = await job_log.mark_interrupted(db, is_gone)
        if interrupted:
            log.warning("%d job(s) were interrupted by the last shutdown", interrupted)
        await result_store.purge_results(db, keep_days=settings.results_kept_days)
        queue = JobQueue(engine or StyleEngine(settings))
        service = cls(settings, queue, db, owner=owner)
        await queue.start()
        return service

    async def stop(self, grace_s: float | None = None) -> None:
        """Refuse new jobs, tell waiting users, give the running job ``grace_s`` to finish."""
        await self.trainings.stop()
        await self.queue.stop(grace_s)

    async def close(self, grace_s: float | None = None) -> None:
        await self.stop(grace_s)
        await self.db.close()

    @property
    def accepting(self) -> bool:
        return self.queue.accepting

    @property
    def waiting_count(self) -> int:
        return self.queue.waiting_count

    @property
    def running_count(self) -> int:
        return self.queue.running_count

    # -- checks ------------------------------------------------------------------------

    def check(self, method: str | None, options: dict[str, Any], *, prompt: str | None = None,
              n_styles: int | None = None, has_mask: bool = False,
              requester: Requester | None = None) -> Method:
        """Refuse what cannot work before anything is downloaded or queued (``check_request``);
        with ``requester``, their own trained styles are models they may name."""
        own = self.trained.folder(requester) if requester is not None else None
        return check_request(self.settings, method, options, prompt=prompt, n_styles=n_styles,
                             has_mask=has_mask, own_models=own)

    async def check_at(self, requester: Requester, place: Place | None, method: str | None,
                       options: dict[str, Any], *, prompt: str | None = None,
                       n_styles: int | None = None) -> Method:
        """``check`` where the request is made: the place's default method stands in for a
        missing one, and a method not allowed there is refused at once."""
        rules = await self.place_rules(requester, place)
        method = refine.method_for(method, options)
        if place is not None:
            method = (method or "").strip().lower() or rules.default_method or DEFAULT_METHOD
            rules.check_method(method)
        return self.check(method, options, prompt=prompt, n_styles=n_styles, requester=requester)

    def check_preset(self, method: str, options: dict[str, Any], *, n_styles: int,
                     requester: Requester | None = None) -> Method:
        """Refuse a preset that could never work, before its style images are fetched."""
        own = self.trained.folder(requester) if requester is not None else None
        return check_preset(self.settings, method, options, n_styles=n_styles, own_models=own)

    # -- jobs --------------------------------------------------------------------------

    async def submit(self, request: StyleRequest) -> JobHandle:
        """Check the request, fill it from its preset (if any) and queue it; ``UserError`` refuses."""
        if request.requester.platform not in LOCAL_PLATFORMS:
            self.limiter.hit(request.requester)
        preset_name = request.preset.strip() if request.preset else None
        if preset_name:
            preset = await preset_store.get_preset(self.db, request.requester.platform,
                                                   request.requester.user_id, preset_name)
            request = self._apply_preset(request, preset)
        if refine.method_for(request.method, request.options) != request.method:
            request = dataclasses.replace(request, method=refine.REFINER)
        rules = await self.place_rules(request.requester, request.place)
        if request.place is not None:
            request = rules.apply(request)
        request.own_models = self.trained.folder(request.requester)  # theirs, whatever was passed
        self.check(request.method, request.options, prompt=request.prompt,
                   n_styles=len(request.styles), has_mask=request.mask is not None,
                   requester=request.requester)
        if refine.wants_refine(request):
            handle = await self._submit_refine(request, rules)
        else:
            handle = await self._submit_within(refine.without_quality(request), rules)
        self._ephemeral[handle.id] = not rules.public
        while len(self._ephemeral) > VISIBILITY_KEPT:
            self._ephemeral.popitem(last=False)
        if preset_name:
            await preset_store.mark_used(self.db, request.requester.platform,
                                         request.requester.user_id, preset_name)
        return handle

    async def _submit_refine(self, request: StyleRequest, rules: PlaceRules) -> JobHandle:
        """quality=refine (``stylebot.refine``): queue the draft now; the refinement follows it.
        The draft's handle is returned; ``refinement(draft id)`` finds what follows."""
        plan = refine.plan(request, refine.pick_drafter(self.engine))
        draft = await self._submit_within(plan.draft, rules)

        async def submit_refinement(refinement: StyleRequest) -> JobHandle:
            handle = await self.queue.submit(refinement)  # the draft already met the place's limits
            self._ephemeral[handle.id] = self._ephemeral.get(draft.id, False)
            return handle

        self._refinements[draft.id] = refine.Refinement(draft, plan, submit_refinement)
        while len(self._refinements) > VISIBILITY_KEPT:
            self._refinements.popitem(last=False)
        return draft

    def refinement(self, job_id: str) -> refine.Refinement | None:
        """The refinement following draft ``job_id`` (quality=refine), or None for other jobs."""
        return self._refinements.get(job_id)

    async def stop_refining(self, job_id: str, requester: Requester) -> None:
        """The Stop refining button under a draft: its owner only; the draft stays the result."""
        await self.check_click(job_id, refine.STOP, requester)
        refinement = self._refinements.get(job_id)
        if refinement is None or not refinement.active:
            raise UserError("This draft is not being refined any more.")
        refinement.stop()

    async def _submit_within(self, request: StyleRequest, rules: PlaceRules) -> JobHandle:
        """Queue the request, refusing it first if its user reached the place's job limit.

        The queue's own per-user limit is engine-wide; this one counts the user's active
        jobs in the request's space, and those still being submitted there."""
        if request.place is None or rules.jobs_per_user is None:
            return await self.queue.submit(request)
        key = (request.requester.key, request.place.space)
        mine = self._submitting[key] + sum(
            1 for job, _ in self.queue.jobs_of(request.requester)
            if (job.prepared.request.place or Place("")).space == request.place.space)
        if mine >= rules.jobs_per_user:
            raise UserError(f"You already have {mine} job{'s' if mine > 1 else ''} queued or "
                            f"running here (this server's limit is {rules.jobs_per_user}); wait "
                            "for one to finish or cancel one.")
        self._submitting[key] += 1
        try:
            return await self.queue.submit(request)
        finally:
            self._submitting[key] -= 1
            if self._submitting[key] <= 0:
                del self._submitting[key]

    def result_is_public(self, job_id: str) -> bool:
        """Whether the job's result is for the channel (True) or only its asker (ephemeral), as
        the place's settings said when it was submitted; adapters deliver accordingly."""
        return not self._ephemeral.get(job_id, False)

    # -- per-place settings (admins) -----------------------------------------------------

    async def place_rules(self, requester: Requester, place: Place | None) -> PlaceRules:
        """The settings in force where a request was made (none outside chat places)."""
        if place is None:
            return PlaceRules()
        space, room = await place_store.get_settings(self.db, requester.platform, place.space,
                                                     place.room)
        return PlaceRules.merge(space, room)

    async def place_settings(self, requester: Requester, place: Place) -> PlaceSettingsView:
        """/settings show: the server's own, the channel's own, and what is in force here."""
        space, room = await place_store.get_settings(self.db, requester.platform, place.space,
                                                     place.room)
        return PlaceSettingsView(space, room, PlaceRules.merge(space, room))

    async def change_place_settings(self, admin: Requester, place: Place, given: dict[str, Any], *,
                                    whole_space: bool) -> PlaceSettingsView:
        """/settings: set (``default`` clears) settings of the server or of this channel.
        The front end has checked that ``admin`` is one by its platform's rule."""
        changes = parse_changes(given)
        room = place_store.SPACE_WIDE if whole_space else place.room
        await place_store.save_settings(self.db, admin.platform, place.space, room, changes,
                                        updated_by=admin.user_id)
        return await self.place_settings(admin, place)

    @staticmethod
    def _apply_preset(request: StyleRequest, preset: PresetRecord) -> StyleRequest:
        if request.method and request.method.strip().lower() != preset.method:
            raise OptionError(f"Preset '{preset.name}' is for method '{preset.method}', not "
                              f"'{request.method}'; leave out the method or pick another preset.")
        # Under declared names, so a typed option overrides the preset's even when one of them
        # uses another name (presets saved before adain's alpha became strength).
        names = get_method(preset.method).options.normalise_names
        options = {**names(preset.options), **names(request.options)}
        styles = request.styles or [PresetStyle(s.data, s.filename) for s in preset.styles]
        weights = request.style_weights
        if weights is None and not request.styles and preset.styles:
            weights = [s.weight for s in preset.styles]
        return StyleRequest(method=preset.method, content=request.content, requester=request.requester,
                            styles=styles, style_weights=weights, prompt=request.prompt,
                            options=options, preset=preset.name,
                            mask=request.mask, place=request.place)

    def job(self, requester: Requester, job_id: str) -> JobHandle | None:
        """One of the requester's jobs, queued, running or recently finished; None otherwise."""
        handle = self.queue.handle(job_id)
        if handle is None or handle.requester.key != requester.key:
            return None
        return handle

    def jobs_of(self, requester: Requester) -> list[QueuedJob]:
        return [QueuedJob(job.id, job.method, position, job.state)
                for job, position in self.queue.jobs_of(requester)]

    async def queue_status(self, requester: Requester) -> list[QueuedJob]:
        """/queue: the requester's jobs with positions and an ETA each.

        A job's ETA is what is left of every job before it and of itself: each method's
        median over its last ``ETA_SAMPLES`` finished runs (the job log), less the time a
        running job has already run. Without history for one of those methods, no ETA.
        """
        mine = self.queue.jobs_of(requester)
        if not mine:
            return []
        active = self.queue.active_jobs()
        recent = await job_log.recent_seconds(self.db, sorted({job.method for job, _ in active}),
                                              limit=ETA_SAMPLES)
        now, total, etas = time.monotonic(), 0.0, {}
        for job, _ in active:
            median = job_log.percentile(sorted(recent.get(job.method, [])), 50)
            if median is None:
                total = float("nan")  # unknown from here on
            else:
                ran = now - job.started if job.started is not None else 0.0
                total += max(0.0, median - ran)
            etas[job.id] = None if total != total else total
        return [QueuedJob(job.id, job.method, position, job.state, etas.get(job.id))
                for job, position in mine]

    async def stats(self, *, since_days: float | None = None) -> list[job_log.MethodStats]:
        """/stats for admins: per method, jobs, run times and failure reasons (the job log).
        Who counts as an admin is each platform's rule, checked by its front end."""
        since = timedelta(days=since_days) if since_days is not None else None
        return await job_log.job_stats(self.db, since=since)

    def cancel(self, requester: Requester, job_id: str | None = None) -> str:
        """Cancel one of the requester's jobs (the newest when no id is given), or their training
        (by its id, or when they have no job); say which."""
        mine = self.queue.jobs_of(requester)
        training = self.trainings.running(requester)
        if training is not None and ((job_id or "").strip() == training.id
                                     or (job_id is None and not mine)):
            training.cancel(f"cancelled by you (training {training.id}); nothing was saved.")
            return training.id
        if not mine:
            raise UserError("You have no jobs queued or running.")
        if job_id is None:
            job = max((j for j, _ in mine), key=lambda j: j.created)
        else:
            job = next((j for j, _ in mine if j.id == job_id.strip()), None)
            if job is None:
                ids = ", ".join(j.id for j, _ in mine)
                raise UserError(f"You have no active job '{job_id}'. Your jobs: {ids}.")
        self.queue.cancel(job.id, requester)
        return job.id

    # -- results and their buttons --------------------------------------------------------

    def recent_result(self, job_id: str) -> Result | None:
        """A result still in the queue's memory (its last finished jobs), or None."""
        job = self.queue.get(job_id)
        if job is None or not isinstance(job.final, Done):
            return None
        return Result(job.prepared.request, job.final.meta)

    async def result(self, job_id: str) -> Result | None:
        """A finished job's result: from the queue's memory, else as the database kept it
        (after a restart, or made by another process); None once purged or never done."""
        result = self.recent_result(job_id)
        if result is not None:
            return result
        record = await result_store.get_result(self.db, job_id.strip()[:64],
                                               keep_days=self.settings.results_kept_days)
        return None if record is None else result_of(record)

    def result_actions(self, job_id: str) -> list[str]:
        """The buttons a result just delivered gets (see ``results.result_actions``)."""
        result = self.recent_result(job_id)
        refinement = self._refinements.get(job_id)
        if result is not None and refinement is not None and refinement.active:
            return [refine.STOP]  # a draft being refined: nothing else until it is settled
        return [] if result is None else result_actions(result.meta)

    async def check_click(self, job_id: str, action: str, requester: Requester) -> Result:
        """The result a click on one of its buttons acts on, or ``UserError`` saying why not:
        purged, or made with another user's private preset (``results.check_clicker``).
        Adapters ask this before they defer or open a form, so a refusal is immediate."""
        result = await self.result(job_id)
        if result is None:
            raise UserError("This result is too old for its buttons; run the command again.")
        check_clicker(result, action, requester)
        return result

    async def rerun(self, job_id: str, action: str, requester: Requester) -> JobHandle:
        """Re-roll, Stronger or Weaker on a result: a new job for ``requester``."""
        result = await self.check_click(job_id, action, requester)
        return await self.submit(variant(result, action, requester))

    async def result_info(self, job_id: str, requester: Requester) -> ResultInfo:
        """Info on a result: how it was made and the command that makes it again, for whoever
        may click its buttons (``check_click``), from memory or as the database kept it."""
        result = await self.check_click(job_id, INFO, requester)
        return info_of(job_id.strip(), result, requester)

    async def save_result(self, job_id: str, requester: Requester, name: str, *,
                          replace: bool = False) -> PresetRecord:
        """Save as preset: the result's method and chosen options, and for its owner its style
        images too. Anyone else saves what the result shows, never images they were not shown."""
        result = await self.check_click(job_id, "save", requester)
        request, meta = result.request, result.meta
        options = changed_options(get_method(meta.method).options, meta.options)
        styles = request.styles if requester.key == request.requester.key else []
        return await self.save_preset(requester, name, meta.method, options, styles,
                                      request.style_weights if styles else None, replace=replace)

    async def _record_event(self, job: Job, event: JobEvent) -> None:
        if isinstance(event, Queued) and job.history and job.history[0] is event:
            req = job.prepared.request
            await job_log.record_queued(self.db, job.id, job.requester.platform, job.requester.user_id,
                                        job.method, jsonable_options(job.prepared.options), req.preset,
                                        process_owner=str(self.owner))
        if isinstance(event, Started):
            await job_log.record_started(self.db, job.id, event.device)
        elif isinstance(event, Done):
            await job_log.record_finished(self.db, job.id, "done", job.run_seconds)
            if job.requester.platform not in LOCAL_PLATFORMS:  # their results have no buttons
                await result_store.keep_result(
                    self.db, record_of(job, event.meta, jsonable_options(event.meta.options)),
                    keep_days=self.settings.results_kept_days,
                    per_user=self.settings.results_kept_per_user)
        elif isinstance(event, Failed):
            await job_log.record_finished(self.db, job.id, "failed", job.run_seconds,
                                          error=event.detail or event.message)
        elif isinstance(event, Cancelled):
            await job_log.record_finished(self.db, job.id, "cancelled", job.run_seconds,
                                          error=event.reason)

    # -- presets -----------------------------------------------------------------------

    async def save_preset(self, requester: Requester, name: str, method: str,
                          options: dict[str, Any] | None = None, styles: list[ImageUpload] | None = None,
                          style_weights: list[float] | None = None, *, replace: bool = False) -> PresetRecord:
        """Check the preset would work, store its style images, and save it for this user only."""
        styles = styles or []
        m = self.check_preset(method, options or {}, n_styles=len(styles), requester=requester)
        given = m.options.normalise_names(options or {})
        typed = m.options.validate(given, method=m.name)
        stored_options = {k: typed[k] for k in given}
        weights = normalise_style_weights(style_weights, len(styles))
        encoded = await asyncio.to_thread(
            lambda: [encode_png(image) for image in self.engine.decode_styles(styles, PRESET_STYLE_SIDE)])
        blobs = [StyleBlob(data=data, weight=weight, mime="image/png",
                           filename=upload.filename or f"style{i + 1}.png")
                 for i, (upload, data, weight) in enumerate(zip(styles, encoded, weights))]
        return await preset_store.save_preset(self.db, requester.platform, requester.user_id, name,
                                              m.name, jsonable_options(stored_options), blobs, replace=replace)

    async def list_presets(self, requester: Requester) -> list[PresetSummary]:
        return await preset_store.list_presets(self.db, requester.platform, requester.user_id)

    async def get_preset(self, requester: Requester, name: str) -> PresetRecord:
        return await preset_store.get_preset(self.db, requester.platform, requester.user_id, name)

    async def delete_preset(self, requester: Requester, name: str) -> None:
        await preset_store.delete_preset(self.db, requester.platform, requester.user_id, name)

    # -- styles users train (/train) -------------------------------------------------------

    def check_training(self, requester: Requester, name: str) -> None:
        """Every /train refusal that needs no image: answered before any download."""
        self.trainings.check(requester, name)

    async def train(self, requester: Requester, style: ImageUpload, name: str) -> TrainingHandle:
        """Start training ``style`` as the requester's own fast model ``name``, in the
        background at low priority; ``UserError`` refuses."""
        if requester.platform not in LOCAL_PLATFORMS:
            self.limiter.hit(requester)
        return await self.trainings.start(requester, style, name)

    def trained_styles(self, requester: Requester) -> list[str]:
        """The names of the requester's own trained styles."""
        return self.trained.names(requester)

    def delete_trained_style(self, requester: Requester, name: str) -> None:
        """Delete one of the requester's own styles (theirs only: their folder alone is looked at)."""
        self.trained.delete(requester, name)

    def model_choices(self, requester: Requester, method: str | None, typed: str = "") -> list[str]:
        """The values of option ``model`` this requester may give ``method`` (default fast) that
        contain ``typed``: the server's models, then the requester's own, never anyone else's."""
        m = get_method(method or "fast")
        own = m.own_model_names(self.trained.folder(requester))
        server = [x for x in m.available_models(self.engine.weights, self.settings) or []
                  if x not in own and "<" not in x]  # "26:<0..25>" describes values, is none
        text = typed.strip().lower()
        return [x for x in own + server if text in x.lower()]

    # -- information ---------------------------------------------------------------------

    def methods_info(self) -> list[dict[str, Any]]:
        return describe_methods(self.engine)

    def health(self) -> dict[str, Any]:
        backend = self.queue.backend.health()
        return {"device": self.queue.backend.device, "waiting": self.queue.waiting_count,
                "running": self.queue.running_count, "accepting": self.queue.accepting,
                "models_loaded": backend.get("models_loaded", self.engine.models.keys()),
                "backend": backend}


def check_request(settings: Settings, method: str | None, options: dict[str, Any], *,
                  prompt: str | None = None, n_styles: int | None = None,
                  has_mask: bool = False, own_models: Path | None = None) -> Method:
    """Refuse what cannot work before anything is downloaded or queued; the method.

    Options are checked against the method's declarations, so the message lists what
    that method takes. ``n_styles`` None skips the count of style images (a front end
    that has not found its images yet). ``submit`` runs the same check on the full
    request. ``InputError.field`` names the input at fault, for forms.
    """
    try:
        quality, options = refine.take_quality(options)
        if quality == refine.REFINE:
            method = refine.refined_method(refine.method_for(method, {refine.QUALITY: quality}))
            refine.check_options(options)
    except OptionError as exc:
        raise InputError("options", exc.message) from None
    m = get_method(method or DEFAULT_METHOD)
    try:
        typed = m.options.validate(options, method=m.name)
        m.check_options_of(typed, settings, own_models)
    except OptionError as exc:
        raise InputError("options", exc.message) from None
    has_prompt = bool(prompt and prompt.strip())
    if has_prompt and not m.needs_prompt:
        raise InputError("prompt", f"Method '{m.name}' takes no prompt; remove it, or pick a "
                                   "text-guided method such as sd or nada.")
    if m.style_replaces_prompt:
        # A style image may stand in for the prompt; the method says when the pair is wrong
        # (once the images are counted: n_styles None cannot tell yet).
        if n_styles is not None and (n_styles > 0) == has_prompt:
            raise InputError("prompt", m.prompt_or_style_refusal(has_prompt))
    elif m.needs_prompt and not has_prompt:
        raise InputError("prompt", f"Method '{m.name}' needs a text prompt, e.g. "
                                   f"/{m.name} an oil painting in Van Gogh's style.")
    if n_styles is not None:
        try:
            m.check_inputs(n_styles=n_styles, has_prompt=has_prompt, has_mask=has_mask)
        except OptionError as exc:
            raise InputError("styles", exc.message) from None
    return m


def check_preset(settings: Settings, method: str, options: dict[str, Any], *,
                 n_styles: int, own_models: Path | None = None) -> Method:
    """Refuse a preset that could never work, before its style images are fetched."""
    m = get_method(method)
    typed = m.options.validate(m.options.normalise_names(options), method=m.name)
    m.check_options_of(typed, settings, own_models)
    if n_styles > m.max_styles:
        m.check_inputs(n_styles=n_styles, has_prompt=True, has_mask=False)
    return m


def jsonable_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options as stored and shown: plain values only."""
    return {k: v for k, v in options.items() if isinstance(v, (str, int, float, bool)) or v is None}
