"""The playground's HTTP API: the same requests as the chat adapters, from a local web page.

Everything a chat user can do goes through ``StyleService`` exactly as Discord or Slack
would: the command text is parsed by ``stylebot.commands``, uploads obey the same size and
decoding limits, and one local user ("playground", "local") owns jobs and presets.
Every ``UserError`` becomes HTTP 400 with ``{"error": message}``; anything else is logged
and answered with a generic 500, never a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import mimetypes
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from stylebot.commands import (HELP, STYLIZE, CommandError, ParsedCommand, build_request,
                               parse_command, parse_flag)
from bot.playground.inputs import MAX_FIELD_BYTES, Form, json_body, read_form
from bot.playground.results import Results
from engine.errors import UserError
from engine.events import Cancelled, Done, Failed, JobEvent, Progress, Queued, Started, is_final
from engine.request import Requester
from stylebot.checks import guards_host, is_own_host
from stylebot.clips import CONTENT_HINT
from stylebot.refine import STOPPED, kept_text
from stylebot.results import queue_line, stats_lines
from stylebot.listings import preset_data
from stylebot.service import jsonable_options

if TYPE_CHECKING:
    from engine.queue import JobHandle
    from stylebot.service import StyleService
    from stylebot.settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
REQUESTER = Requester("playground", "local", "you")
PREVIEW_MIN_INTERVAL_S = 0.4
SSE_KEEPALIVE_S = 15.0
BUG_MESSAGE = "Something went wrong on our side; it has been logged."

PLAYGROUND = web.AppKey("playground", "Playground")


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """The one place errors become responses: a person's message, or a generic one."""
    try:
        return await handler(request)
    except UserError as exc:
        return web.json_response({"error": exc.message}, status=400)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return web.json_response({"error": exc.reason}, status=exc.status, headers=allow)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("playground request %s %s failed", request.method, request.path)
        return web.json_response({"error": BUG_MESSAGE}, status=500)


def same_origin_guard(settings: "Settings"):
    """Refuse what another web site makes your browser send (the page has no login).

    A form on any site can POST to 127.0.0.1 without a CORS preflight, and DNS rebinding can
    make a foreign name resolve here: so changes must come from this page's own origin, and
    the Host header must name this machine (``stylebot.checks.is_own_host``).
    """
    check_host = guards_host(settings)
    public = settings.public_host
    names = "localhost" + (f" or {public}" if public else "")

    @web.middleware
    async def guard(request: web.Request, handler) -> web.StreamResponse:
        if check_host and not is_own_host(request.headers.get("Host"), public):
            log.warning("refused a %s %s for host %r", request.method, request.path,
                        request.headers.get("Host"))
            return web.json_response({"error": f"This address only answers as {names}."}, status=403)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                log.warning("refused a %s %s from origin %s", request.method, request.path, origin)
                return web.json_response({"error": "Requests from other web sites are refused."},
                                         status=403)
        return await handler(request)

    return guard


class Playground:
    """Request handlers over one ``StyleService``; one instance per web app."""

    def __init__(self, service: "StyleService", settings: "Settings") -> None:
        self.service = service
        self.settings = settings
        self._results = Results(self.result_limit)

    # -- pages and facts -----------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        return _page_file(STATIC_DIR / "index.html")

    async def static(self, request: web.Request) -> web.Response:
        """The page's own files by name: a fixed list, so no request path reaches the disk."""
        path = STATIC_FILES.get(request.match_info["file"])
        if path is None:
            raise web.HTTPNotFound(reason="No such file.")
        return _page_file(path)

    async def config(self, request: web.Request) -> web.Response:
        s = self.settings
        return web.json_response({
            "user": REQUESTER.user_id, "max_upload_bytes": s.max_upload_bytes,
            "max_side": s.max_side, "max_pixels": s.max_pixels, "jobs_per_user": s.jobs_per_user,
            "max_frames": s.max_frames, "max_video_s": s.max_video_s,
            "max_result_bytes": self.result_limit, "content_formats": CONTENT_HINT,
            "accepting": self.service.accepting, "help": HELP,
        })

    @property
    def result_limit(self) -> int:
        """The playground's own cap on a clip result (``playground_result_mb``): results are
        kept in memory for the page, so a clip over it is fitted like a chat upload."""
        return int(self.settings.playground_result_mb * 2**20)

    async def methods(self, request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(self.service.methods_info))

    async def parse(self, request: web.Request) -> web.Response:
        """Parse a command without running it, so the page can set its controls from typed text."""
        body = await json_body(request)
        parsed = parse_command(str(body.get("command", ""))[:MAX_FIELD_BYTES])
        return web.json_response({"parsed": _parsed_dict(parsed), "text": parsed.to_text()})

    # -- the command box -------------------------------------------------------------------

    async def command(self, request: web.Request) -> web.Response:
        """Run whatever the command box says, with the attached images."""
        form = await read_form(request, self.settings.max_upload_bytes)
        text = form.fields.get("command", "").strip()
        if not text:
            raise CommandError("Type a command, e.g. /stylize method:hub, then press Run.")
        parsed = parse_command(text)
        if parsed.name == STYLIZE:
            return web.json_response(await self._submit(parsed, form))
        if parsed.name == "preset" and parsed.action == "save":
            record = await self._save_preset(parsed.target or "", parsed, form,
                                             replace=parse_flag("replace", form.fields.get("replace")))
            return web.json_response({"kind": "preset_saved", "preset": record,
                                      "message": f"Saved preset '{record['name']}'."})
        if parsed.name == "preset" and parsed.action == "show":
            record = await self.service.get_preset(REQUESTER, parsed.target or "")
            return web.json_response({"kind": "preset", "preset": _preset_dict(record),
                                      "message": _describe_preset(record)})
        if parsed.name == "preset" and parsed.action == "delete":
            await self.service.delete_preset(REQUESTER, parsed.target or "")
            return web.json_response({"kind": "preset_deleted", "name": parsed.target,
                                      "message": f"Deleted preset '{parsed.target}'."})
        if parsed.name == "presets":
            records = [_preset_dict(r) for r in await self.service.list_presets(REQUESTER)]
            lines = [_describe_preset(r) for r in records]
            return web.json_response({"kind": "presets", "presets": records,
                                      "message": "\n".join(lines) or "You have no presets yet."})
        if parsed.name == "cancel":
            job_id = self.service.cancel(REQUESTER, parsed.target)
            return web.json_response({"kind": "cancelled", "job": job_id,
                                      "message": f"Cancelling job {job_id}."})
        if parsed.name == "queue":
            queued = await self.service.queue_status(REQUESTER)
            lines = [queue_line(j) for j in queued]
            return web.json_response({"kind": "jobs", "jobs": [_job_dict(j) for j in queued],
                                      "message": "\n".join(lines) or "You have no jobs queued or running."})
        if parsed.name == "stats":  # the playground is the operator's own: no admin check
            lines = stats_lines(await self.service.stats())
            return web.json_response({"kind": "message", "message": "\n".join(lines)})
        if parsed.name == "methods":
            info = await asyncio.to_thread(self.service.methods_info)
            lines = [f"{m['name']}: {m['summary']}" for m in info]
            return web.json_response({"kind": "message", "message": "\n".join(lines)})
        return web.json_response({"kind": "message", "message": HELP})

    # -- jobs ------------------------------------------------------------------------------

    async def submit(self, request: web.Request) -> web.Response:
        form = await read_form(request, self.settings.max_upload_bytes)
        parsed = parse_command(form.fields.get("command", "") or "/stylize")
        if parsed.name != STYLIZE:
            raise CommandError(f"/api/jobs runs /stylize commands, not /{parsed.name}.")
        return web.json_response(await self._submit(parsed, form))

    async def _submit(self, parsed: ParsedCommand, form: Form) -> dict[str, Any]:
        req = build_request(parsed, requester=REQUESTER, content=form.one("content"),
                            styles=form.files["style"], mask=form.one("mask"))
        handle = await self.service.submit(req)
        log.info("playground job %s: %s", handle.id, parsed.to_text())
        seed = handle.seed  # None where a seed means nothing (deterministic methods)
        return {"kind": "job", "job": handle.id, "method": handle.method,
                "seed": seed, "options": jsonable_options(handle.options),
                "events": f"/api/jobs/{handle.id}/events",
                "message": f"Job {handle.id} queued ({handle.method}"
                           + (f", seed {seed})." if seed is not None else ").")}

    async def jobs(self, request: web.Request) -> web.Response:
        return web.json_response([_job_dict(j) for j in self.service.jobs_of(REQUESTER)])

    async def cancel(self, request: web.Request) -> web.Response:
        job_id = self.service.cancel(REQUESTER, request.match_info["job"])
        return web.json_response({"job": job_id, "message": f"Cancelling job {job_id}."})

    def _own_job(self, job_id: str) -> "JobHandle":
        handle = self.service.job(REQUESTER, job_id)
        if handle is None:
            raise web.HTTPNotFound(reason=f"No playground job '{job_id}'.")
        return handle

    async def stop(self, request: web.Request) -> web.Response:
        """Stop refining a quality=refine draft: the draft stays the result."""
        job_id = request.match_info["job"]
        await self.service.stop_refining(job_id, REQUESTER)
        return web.json_response({"job": job_id, "message": "Stopping the refinement; the draft stays."})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """The job's events as server-sent events, replayed from the start, ending with the last.

        A quality=refine draft's stream goes on after its ``done`` (marked ``refining``): a
        ``refining`` event names the refinement job, whose events follow; a refinement that
        ends without a result, or never starts, ends the stream with ``kept`` (the draft stays).
        """
        handle = self._own_job(request.match_info["job"])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        try:
            final = await self._stream(response, handle)
            refinement = self.service.refinement(handle.id) if isinstance(final, Done) else None
            if refinement is not None:
                job = await refinement.refinement()
                if job is None:
                    await _send(response, {"job": handle.id, "type": "kept",
                                           "reason": kept_text(refinement.problem or STOPPED)})
                else:
                    await _send(response, {"job": handle.id, "type": "refining", "refinement": job.id})
                    await self._stream(response, job, refining=True)
        except ConnectionResetError:
            log.debug("event stream for job %s closed by the page", handle.id)
        return response

    async def _stream(self, response: web.StreamResponse, handle: "JobHandle", *,
                      refining: bool = False) -> JobEvent | None:
        """Write one job's events; its final event (None when the stream ended early)."""
        stream = handle.events()
        last_preview = 0.0
        pending: asyncio.Future | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(stream.__anext__())
                done, _ = await asyncio.wait({pending}, timeout=SSE_KEEPALIVE_S)
                if not done:
                    await response.write(b": keep-alive\n\n")
                    continue
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    break
                pending = None
                data = await self._done_dict(event) if isinstance(event, Done) else self._event_dict(event)
                if isinstance(event, Progress) and event.preview is not None:
                    now = time.monotonic()
                    if now - last_preview >= PREVIEW_MIN_INTERVAL_S:
                        last_preview = now
                        data["preview"] = await asyncio.to_thread(_preview_url, event.preview)
                if isinstance(event, Done) and not refining and self.service.refinement(handle.id):
                    data["refining"] = True
                if refining and isinstance(event, (Failed, Cancelled)):
                    data = {"job": event.job_id, "type": "kept", "reason": kept_text(
                        event.reason if isinstance(event, Cancelled) else event.message)}
                await _send(response, data)
                if is_final(event):
                    return event
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending
            await stream.aclose()
        return None

    async def _done_dict(self, event: Done) -> dict[str, Any]:
        """The done event, with the clip as it will be served (fitted first, so the page can
        say what was lowered); a clip that cannot fit ends the stream as a failure. A still
        is encoded when the page asks for it, as before."""
        data = self._event_dict(event)
        if event.clip is None:
            data["download_name"] = f"stylebot-{event.meta.method}-{event.job_id}.png"
            return data
        try:
            result = await self._results.of(event)
        except UserError as exc:
            return {"job": event.job_id, "type": "failed", "message": exc.message}
        c = result.clip
        assert c is not None
        data["download_name"] = f"stylebot-{event.meta.method}-{event.job_id}.{result.ext}"
        data["meta"]["size"] = list(c.size)
        data["meta"]["clip"] = {"frames": c.frames, "fps": c.fps, "seconds": round(c.seconds, 3),
                                "kind": c.kind, "video": c.is_video, "facts": c.facts, "note": c.note}
        return data

    def _event_dict(self, event: JobEvent) -> dict[str, Any]:
        base = {"job": event.job_id}
        if isinstance(event, Queued):
            return {**base, "type": "queued", "position": event.position}
        if isinstance(event, Started):
            return {**base, "type": "started", "device": event.device}
        if isinstance(event, Progress):
            return {**base, "type": "progress", "fraction": round(event.fraction, 4),
                    "stage": event.stage}
        if isinstance(event, Done):
            m = event.meta
            return {**base, "type": "done", "result": f"/api/jobs/{event.job_id}/result",
                    "download": f"/api/jobs/{event.job_id}/result?download=1",
                    "meta": {"method": m.method, "options": jsonable_options(m.options),
                             "seconds": m.seconds, "device": m.device, "seed": m.seed,
                             "size": list(m.size)}}
        if isinstance(event, Failed):
            return {**base, "type": "failed", "message": event.message}
        if isinstance(event, Cancelled):
            return {**base, "type": "cancelled", "reason": event.reason}
        raise TypeError(f"unknown event {event!r}")  # pragma: no cover

    async def result(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job"]
        final = self._own_job(job_id).final
        if not isinstance(final, Done):
            raise web.HTTPNotFound(reason=f"Job {job_id} has no result"
                                          + (" yet." if final is None else "."))
        result = await self._results.of(final)
        headers = {"Cache-Control": "private, max-age=3600"}
        if request.query.get("download"):
            headers["Content-Disposition"] = (f'attachment; filename="stylebot-{final.meta.method}'
                                              f'-{job_id}.{result.ext}"')
        return web.Response(body=result.data, content_type=result.mime, headers=headers)

    # -- presets ---------------------------------------------------------------------------

    async def list_presets(self, request: web.Request) -> web.Response:
        return web.json_response([_preset_dict(r) for r in await self.service.list_presets(REQUESTER)])

    async def get_preset(self, request: web.Request) -> web.Response:
        record = await self.service.get_preset(REQUESTER, request.match_info["name"])
        return web.json_response(_preset_dict(record))

    async def preset_style(self, request: web.Request) -> web.Response:
        record = await self.service.get_preset(REQUESTER, request.match_info["name"])
        index = request.match_info["index"]
        if not (index.isascii() and index.isdigit() and len(index) <= 6
                and int(index) < len(record.styles)):
            raise web.HTTPNotFound(reason=f"Preset '{record.name}' has no such style image.")
        blob = record.styles[int(index)]
        return web.Response(body=blob.data, content_type=blob.mime or "application/octet-stream")

    async def save_preset(self, request: web.Request) -> web.Response:
        """Save the page's current method, options and style images under a name."""
        form = await read_form(request, self.settings.max_upload_bytes)
        parsed = parse_command(form.fields.get("command", "") or "/stylize")
        record = await self._save_preset(form.fields.get("name", ""), parsed, form,
                                         replace=parse_flag("replace", form.fields.get("replace")))
        return web.json_response(record, status=201)

    async def _save_preset(self, name: str, parsed: ParsedCommand, form: Form, *,
                           replace: bool) -> dict[str, Any]:
        if parsed.preset:
            raise CommandError("A preset cannot be saved from another preset; give its method and options.")
        if not parsed.method:
            raise CommandError("Choose a method before saving a preset, e.g. method:adain.")
        if not name.strip():
            raise CommandError("Give the preset a name, e.g. /preset save name:mine.")
        record = await self.service.save_preset(REQUESTER, name, parsed.method, parsed.options,
                                                form.files["style"], parsed.style_weights,
                                                replace=replace)
        log.info("playground preset %r saved (%s)", record.name, record.method)
        return _preset_dict(record)

    async def delete_preset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        await self.service.delete_preset(REQUESTER, name)
        return web.json_response({"deleted": name})


async def _send(response: web.StreamResponse, data: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(data)}\n\n".encode())


def _parsed_dict(parsed: ParsedCommand) -> dict[str, Any]:
    return {"name": parsed.name, "method": parsed.method, "options": parsed.options,
            "prompt": parsed.prompt, "preset": parsed.preset, "blend": parsed.style_weights,
            "action": parsed.action, "target": parsed.target}


def _job_dict(job) -> dict[str, Any]:
    return {"job": job.job_id, "method": job.method, "position": job.position, "state": job.state,
            "eta_s": None if job.eta_s is None else round(job.eta_s, 1)}


def _preset_dict(record) -> dict[str, Any]:
    """The service's preset data, with the page's URLs for the style images."""
    data = preset_data(record)
    return {**data, "styles": [f"/api/presets/{record.name}/styles/{i}"
                               for i in range(data["style_count"])]}


def _describe_preset(record) -> str:
    data = record if isinstance(record, dict) else _preset_dict(record)
    opts = " ".join(f"{k}:{v}" for k, v in data["options"].items())
    return (f"{data['name']}: {data['method']} {opts}".rstrip()
            + f" ({data['style_count']} style image(s), used {data['use_count']}x)")


def _page_file(path: Path) -> web.Response:
    """One of the page's few small files, whole: no Range handling to answer with a bare 416."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return web.Response(body=path.read_bytes(), content_type=kind, charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


def _preview_url(image) -> str:
    """The preview every front end shows (``engine.images.encode_preview``), as a data URL."""
    from engine.images import encode_preview

    return "data:image/jpeg;base64," + base64.b64encode(encode_preview(image)).decode()


def add_playground(app: web.Application, service: "StyleService", settings: "Settings") -> Playground:
    """Mount the page, its API and their guards (same origin, JSON errors) on ``app``."""
    app.middlewares.extend([same_origin_guard(settings), json_errors])
    pg = Playground(service, settings)
    app[PLAYGROUND] = pg
    r = app.router
    r.add_get("/", pg.index)
    r.add_get("/static/{file}", pg.static)
    r.add_get("/api/config", pg.config)
    r.add_get("/api/methods", pg.methods)
    r.add_post("/api/parse", pg.parse)
    r.add_post("/api/command", pg.command)
    r.add_post("/api/jobs", pg.submit)
    r.add_get("/api/jobs", pg.jobs)
    r.add_delete("/api/jobs/{job}", pg.cancel)
    r.add_get("/api/jobs/{job}/events", pg.events)
    r.add_post("/api/jobs/{job}/stop", pg.stop)
    r.add_get("/api/jobs/{job}/result", pg.result)
    r.add_get("/api/presets", pg.list_presets)
    r.add_post("/api/presets", pg.save_preset)
    r.add_get("/api/presets/{name}", pg.get_preset)
    r.add_delete("/api/presets/{name}", pg.delete_preset)
    r.add_get("/api/presets/{name}/styles/{index}", pg.preset_style)
    return pg
