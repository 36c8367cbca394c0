"""A finished job as the database keeps it for its buttons, and back.

The queue remembers its last finished jobs only while the process lives; ``record_of``
turns one into the plain record ``storage.results`` keeps, and ``result_of`` turns that
record back into the ``Result`` the button rules (``stylebot.results``) work on, so those
rules read the same whether the job is in memory, from before a restart or another process's.
A style image that came out of the owner's preset comes back as a ``PresetStyle``, so the
private-preset rule of ``check_clicker`` holds after a restart too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.events import ResultMeta
from engine.request import ImageUpload, Place, Requester, StyleRequest
from storage.results import InputImage, ResultRecord

from .results import PresetStyle, Result

if TYPE_CHECKING:
    from engine.queue import Job


def record_of(job: "Job", meta: ResultMeta, options: dict[str, Any]) -> ResultRecord:
    """What ``job``'s buttons need, ``options`` being its options as stored (plain values)."""
    request = job.prepared.request
    images = [InputImage("content", request.content.data, request.content.filename)]
    images += [InputImage("style", style.data, style.filename, isinstance(style, PresetStyle))
               for style in request.styles]
    if request.mask is not None:
        images.append(InputImage("mask", request.mask.data, request.mask.filename))
    place = request.place
    return ResultRecord(
        job_id=job.id, platform=job.requester.platform, user_id=job.requester.user_id,
        method=meta.method, options=options, seed=meta.seed, prompt=request.prompt,
        preset=request.preset, style_weights=request.style_weights,
        space=place.space if place else None, room=place.room if place else None,
        info={"seconds": meta.seconds, "device": meta.device, "size": list(meta.size),
              "prompt": meta.prompt, "extra": {k: v for k, v in meta.extra.items()  # a clip's frames
                                               if isinstance(v, (str, int, float, bool))}},
        images=images)


def result_of(record: ResultRecord) -> Result:
    """The ``Result`` a kept record stands for: the request as it ran and how it ran."""
    content = next(i for i in record.images if i.role == "content")
    styles = [(PresetStyle if i.from_preset else ImageUpload)(i.data, i.filename)
              for i in record.images if i.role == "style"]
    mask = next((ImageUpload(i.data, i.filename) for i in record.images if i.role == "mask"), None)
    request = StyleRequest(
        method=record.method, content=ImageUpload(content.data, content.filename),
        requester=Requester(record.platform, record.user_id), styles=styles,
        style_weights=record.style_weights, prompt=record.prompt, options=dict(record.options),
        preset=record.preset, mask=mask,
        place=Place(record.space, record.room or "") if record.space is not None else None)
    info = record.info
    size = info.get("size") or [0, 0]
    meta = ResultMeta(method=record.method, options=dict(record.options),
                      seconds=float(info.get("seconds") or 0.0), device=str(info.get("device") or ""),
                      seed=record.seed, size=(int(size[0]), int(size[1])), prompt=info.get("prompt"),
                      extra=dict(info.get("extra") or {}))
    return Result(request, meta)
