"""The one entry point every front end uses: CLI, Discord, Slack and the playground.

Adapters translate platform input into a ``StyleRequest`` and call this service; it
fills requests from saved presets, submits them to the queue, keeps the job log, and
manages presets. It holds no platform code and no SQL of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from engine.engine import StyleEngine
from engine.errors import OptionError, UserError
from engine.events import Cancelled, Done, Failed, JobEvent, Queued, Started
from engine.images import encode_png
from engine.methods import get_method, loadable_methods
from engine.methods.base import normalise_style_weights
from engine.queue import Job, JobHandle, JobQueue
from engine.request import ImageUpload, Requester, StyleRequest
from stylebot.settings import Settings
from storage import jobs as job_log
from storage import presets as preset_store
from storage.db import Database, open_database
from storage.presets import PresetRecord, PresetSummary, StyleBlob

log = logging.getLogger(__name__)

PRESET_STYLE_SIDE = 1024  # stored style images are capped: presets must not bloat the database


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    method: str
    position: int  # 0 = running now
    state: str


class StyleService:
    """Presets, submission and job bookkeeping over one engine, queue and database."""

    def __init__(self, settings: Settings, queue: JobQueue, db: Database) -> None:
        self.settings = settings
        self.queue = queue
        self.engine = queue.engine
        self.db = db
        queue.observers.append(self._record_event)

    @classmethod
    async def open(cls, settings: Settings, *, engine: StyleEngine | None = None) -> "StyleService":
        settings.home.mkdir(parents=True, exist_ok=True)
        db = await open_database(settings.resolved_database_url)
        interrupted = await job_log.mark_interrupted(db)
        if interrupted:
            log.warning("%d job(s) were interrupted by the last shutdown", interrupted)
        queue = JobQueue(engine or StyleEngine(settings))
        service = cls(settings, queue, db)
        await queue.start()
        return service

    async def close(self, grace_s: float | None = None) -> None:
        await self.queue.stop(grace_s)
        await self.db.close()

    # -- jobs --------------------------------------------------------------------------

    async def submit(self, request: StyleRequest) -> JobHandle:
        """Fill the request from its preset (if any) and queue it; ``UserError`` refuses."""
        preset_name = request.preset.strip() if request.preset else None
        if preset_name:
            preset = await preset_store.get_preset(self.db, request.requester.platform,
                                                   request.requester.user_id, preset_name)
            request = self._apply_preset(request, preset)
        handle = await self.queue.submit(request)
        if preset_name:
            await preset_store.mark_used(self.db, request.requester.platform,
                                         request.requester.user_id, preset_name)
        return handle

    @staticmethod
    def _apply_preset(request: StyleRequest, preset: PresetRecord) -> StyleRequest:
        if request.method and request.method.strip().lower() != preset.method:
            raise OptionError(f"Preset '{preset.name}' is for method '{preset.method}', not "
                              f"'{request.method}'; leave out the method or pick another preset.")
        styles = request.styles or [ImageUpload(s.data, s.filename) for s in preset.styles]
        weights = request.style_weights
        if weights is None and not request.styles and preset.styles:
            weights = [s.weight for s in preset.styles]
        return StyleRequest(method=preset.method, content=request.content, requester=request.requester,
                            styles=styles, style_weights=weights, prompt=request.prompt,
                            options={**preset.options, **request.options}, preset=preset.name,
                            mask=request.mask)

    def jobs_of(self, requester: Requester) -> list[QueuedJob]:
        return [QueuedJob(job.id, job.method, position, job.state)
                for job, position in self.queue.jobs_of(requester)]

    def cancel(self, requester: Requester, job_id: str | None = None) -> str:
        """Cancel one of the requester's jobs (the newest when no id is given); say what happened."""
        mine = self.queue.jobs_of(requester)
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

    async def _record_event(self, job: Job, event: JobEvent) -> None:
        if isinstance(event, Queued) and job.history and job.history[0] is event:
            req = job.prepared.request
            await job_log.record_queued(self.db, job.id, job.requester.platform, job.requester.user_id,
                                        job.method, jsonable_options(job.prepared.options), req.preset)
        if isinstance(event, Started):
            await job_log.record_started(self.db, job.id, event.device)
        elif isinstance(event, Done):
            await job_log.record_finished(self.db, job.id, "done", event.meta.seconds)
        elif isinstance(event, (Failed, Cancelled)):
            status = "failed" if isinstance(event, Failed) else "cancelled"
            error = event.reason if isinstance(event, Cancelled) else (event.detail or event.message)
            await job_log.record_finished(self.db, job.id, status, time.monotonic() - job.created,
                                          error=error)

    # -- presets -----------------------------------------------------------------------

    async def save_preset(self, requester: Requester, name: str, method: str,
                          options: dict[str, Any] | None = None, styles: list[ImageUpload] | None = None,
                          style_weights: list[float] | None = None, *, replace: bool = False) -> PresetRecord:
        """Check the preset would work, store its style images, and save it for this user only."""
        m = get_method(method)
        given = m.options.normalise_names(options or {})
        typed = m.options.validate(given, method=m.name)
        stored_options = {k: typed[k] for k in given}
        styles = styles or []
        if len(styles) > m.max_styles:
            m.check_inputs(n_styles=len(styles), has_prompt=True, has_mask=False)
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

    # -- information ---------------------------------------------------------------------

    def methods_info(self) -> list[dict[str, Any]]:
        return describe_methods(self.engine.weights)

    def health(self) -> dict[str, Any]:
        return {"device": self.engine.device, "waiting": self.queue.waiting_count,
                "running": self.queue.running_count, "accepting": self.queue.accepting,
                "models_loaded": self.engine.models.keys()}


def describe_methods(weights) -> list[dict[str, Any]]:
    """Every method with its options and whether the weights its defaults need are here."""
    out = []
    for method in loadable_methods():
        info = method.describe()
        needed = method.weight_names(None)
        status = {w: weights.locate(w)[0] for w in needed if w in weights.catalogue}
        info["weights"] = status
        info["ready"] = all(where != "missing" for where in status.values())
        out.append(info)
    return out


def jsonable_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options as stored and shown: plain values only."""
    return {k: v for k, v in options.items() if isinstance(v, (str, int, float, bool)) or v is None}
