"""What the Info button under a result says: how it was made and the command that makes it again.

The lines start as *Stylebot info* reads them out of a result's file (``results.settings_lines``
over ``engine.resultinfo.settings_of``: method, chosen options, prompt, seed, size, nothing
private), so both answers agree; then what only the running bot knows: the time and device, a
clip's frames, and for the result's owner alone the name of their preset. Whoever may click
is decided before, by ``results.check_clicker``; the input images are never described.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.errors import visible
from engine.resultinfo import settings_of

from .clips import clip_facts
from .results import Result, reuse_command, settings_lines

if TYPE_CHECKING:
    from engine.request import Requester


@dataclass(frozen=True)
class ResultInfo:
    """Plain lines and a command; each front end adds its markup."""

    job_id: str
    lines: list[str]
    command: str


def info_of(job_id: str, result: Result, requester: "Requester") -> ResultInfo:
    """Info on ``result`` as ``requester`` may see it (a clicker the button rules let through)."""
    meta, request = result.meta, result.request
    settings = settings_of(meta)
    lines = settings_lines(settings)
    lines.append(f"Time: {meta.seconds:.1f} s on {visible(meta.device) or 'unknown device'}")
    frames, fps = meta.extra.get("frames"), meta.extra.get("fps")
    if isinstance(frames, int) and isinstance(fps, (int, float)) and frames > 0 and fps > 0:
        lines.append(f"Clip: {clip_facts(frames, fps, frames / fps)}")
    if request.preset and requester.key == request.requester.key:  # preset names are private
        lines.append(f"Preset: {visible(request.preset)} (yours)")
    lines.append(f"Job: {job_id}")
    blend = request.style_weights if len(request.styles) > 1 else None
    return ResultInfo(job_id, lines, reuse_command(settings, style_weights=blend))
