"""Fitting a styled clip into a platform's upload limit, and saying what that cost.

A clip goes back as the kind it came in (``engine.video.encode_clip``), but platforms cap
uploads: Discord at the server's limit (10 MB unless boosted), Slack at 1 GB, the
playground at its own setting. Each front end passes its limit and its name; what to give up
is decided here once, in this order: frames per second (motion still reads at 8 fps), then
size, then, for a GIF, colours, re-encoding until the clip fits. The result says what was
lowered, so the person knows why their clip looks different.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

from PIL import Image

from engine.errors import UserError
from engine.video import Clip, encode_clip

from .clips import MIME_BY_KIND, VIDEO_KINDS, clip_facts

log = logging.getLogger(__name__)

MIN_FPS = 8.0  # below this, motion stutters: size goes next
MIN_SIDE = 96  # below this, a result is not worth posting
GIF_COLOURS = (128, 64, 32, 16)
MAX_ENCODES = 16  # one fitting never costs more than this many encodings
SIZE_MARGIN = 0.92  # aim a little under the limit: size does not shrink exactly with area


@dataclass(frozen=True)
class FittedClip:
    """An encoded clip result and what fitting it changed (``lowered``: '8 fps', '320 px')."""

    data: bytes
    kind: str  # the file extension: gif, webp, png, mp4, mov, webm
    frames: int
    fps: float
    seconds: float
    size: tuple[int, int]
    lowered: tuple[str, ...] = ()
    limit: int = 0
    where: str = ""

    @property
    def mime(self) -> str:
        return MIME_BY_KIND.get(self.kind, "application/octet-stream")

    @property
    def is_video(self) -> bool:
        return self.kind in VIDEO_KINDS

    def filename(self, stem: str) -> str:
        return f"{stem}.{self.kind}"

    @property
    def facts(self) -> str:
        """'24 frames at 12 fps (2.0 s)': what was delivered, after any lowering."""
        return clip_facts(self.frames, self.fps, self.seconds)

    @property
    def note(self) -> str:
        """'lowered to 8 fps and 320 px to fit Discord's 10 MB', or '' when nothing was."""
        if not self.lowered:
            return ""
        return f"lowered to {_and(self.lowered)} to fit {self.where}'s {size_text(self.limit)}"


def size_text(n_bytes: int) -> str:
    """A limit as people say it: '10 MB', '0.5 MB', '40 KB'."""
    mb = n_bytes / 2**20
    return f"{round(mb, 1):g} MB" if mb >= 0.1 else f"{round(n_bytes / 1024):g} KB"


def _and(parts: tuple[str, ...]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def at_fps_step(clip: Clip, step: int) -> Clip:
    """Every ``step``-th frame, each lasting as long as the frames it stands for (so the clip,
    and any audio, keeps its length)."""
    if step <= 1:
        return clip
    frames = clip.frames[::step]
    durations = [sum(clip.durations_ms[i:i + step]) for i in range(0, len(clip.frames), step)]
    return replace(clip, frames=frames, durations_ms=durations, fps=round(clip.fps / step, 3))


def at_side(clip: Clip, side: int) -> Clip:
    """Frames scaled so the longest side is ``side`` (never enlarged)."""
    width, height = clip.size
    if max(width, height) <= side:
        return clip
    scale = side / max(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return clip.with_frames([f.resize(target, Image.Resampling.LANCZOS) for f in clip.frames])


def with_colours(clip: Clip, colours: int) -> Clip:
    """Every frame on a palette of ``colours``: a GIF's LZW data shrinks with its palette."""
    return clip.with_frames([f.convert("RGB").quantize(colours, dither=Image.Dither.NONE)
                             for f in clip.frames])


class _Encoder:
    """Encodes candidates, counting, so fitting stops after ``MAX_ENCODES``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.count = 0

    def __call__(self, clip: Clip) -> bytes:
        self.count += 1
        return encode_clip(clip, self.kind)[0]

    @property
    def spent(self) -> bool:
        return self.count >= MAX_ENCODES


def fit_clip(clip: Clip, limit: int, where: str) -> FittedClip:
    """``clip`` encoded as its own kind within ``limit`` bytes: fps lowered first (not under
    ``MIN_FPS``), then size (not under ``MIN_SIDE``), then a GIF's colours. ``UserError``
    (one line naming ``where``'s limit) when even the least of all three does not fit."""
    encode = _Encoder(clip.kind)
    data = encode(clip)
    step, side, colours = 1, max(clip.size), None
    current = clip

    # 1. Frames per second: every step-th frame, the step guessed from how far over it is.
    max_step = max(1, math.floor(clip.fps / MIN_FPS + 1e-9)) if len(clip.frames) > 1 else 1
    while len(data) > limit and step < max_step and not encode.spent:
        step = min(max_step, max(step + 1, math.ceil(step * len(data) / limit)))
        current = at_fps_step(clip, step)
        data = encode(current)

    # 2. Size: area roughly follows bytes, so the side by the square root of how far over.
    slower = current
    while len(data) > limit and side > MIN_SIDE and not encode.spent:
        scale = min(0.9, max(0.5, math.sqrt(limit / len(data)) * SIZE_MARGIN))
        side = max(MIN_SIDE, int(side * scale))
        current = at_side(slower, side)
        data = encode(current)

    # 3. A GIF's palette.
    if encode.kind == "gif":
        smaller = current
        for n in GIF_COLOURS:
            if len(data) <= limit or encode.spent:
                break
            colours = n
            current = with_colours(smaller, n)
            data = encode(current)

    lowered = tuple(part for part, changed in (
        (f"{current.fps:.3g} fps", step > 1),
        (f"{max(current.size)} px", side < max(clip.size)),
        (f"{colours} colours", colours is not None)) if changed)
    if len(data) > limit:
        log.info("clip of %d bytes does not fit %s's %d after %d encodings (%s)", len(data), where,
                 limit, encode.count, ", ".join(lowered) or "nothing lowered")
        tried = f" even at {_and(lowered)}" if lowered else ""
        raise UserError(f"The result is {size_text(len(data))}{tried}, over {where}'s "
                        f"{size_text(limit)} limit; try a shorter clip or a smaller size.")
    if lowered:
        log.info("clip fitted to %s's %d bytes in %d encodings: %s", where, limit, encode.count,
                 ", ".join(lowered))
    return FittedClip(data=data, kind=encode.kind, frames=len(current.frames), fps=current.fps,
                      seconds=current.seconds, size=current.size, lowered=lowered, limit=limit,
                      where=where)
