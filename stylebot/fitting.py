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
from engine.events import ResultMeta
from engine.resultinfo import settings_of
from engine.video import Clip, encode_clip

from .clips import MIME_BY_KIND, VIDEO_KINDS, clip_facts

log = logging.getLogger(__name__)

MIN_FPS = 8.0  # below this, motion stutters: size goes next
MIN_SIDE = 96  # below this, a result is not worth posting
GIF_COLOURS = (128, 64, 32, 16)
MAX_ENCODES = 4  # whole-clip encodings one fitting may cost (estimates are on samples)
MAX_ESTIMATES = 24  # sample encodings one fitting may cost
SAMPLE_RUNS, SAMPLE_RUN = 3, 4  # a long clip is judged by 3 runs of 4 consecutive frames
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
    encodes: int = 1  # whole-clip encodings it took

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


@dataclass(frozen=True)
class _Setting:
    """One rung of the ladder: keep every ``step``-th frame, at ``side`` px, on ``colours``."""

    step: int = 1
    side: int = 0
    colours: int | None = None


def _lower(setting: _Setting, over: float, max_step: int, kind: str) -> _Setting | None:
    """The next setting down for a clip ``over`` times the limit: fps, then size, then colours;
    None when all three are at their floor."""
    if setting.step < max_step:
        step = max(setting.step + 1, math.ceil(setting.step * over))
        return replace(setting, step=min(max_step, step))
    if setting.side > MIN_SIDE:
        scale = min(0.9, max(0.5, math.sqrt(1 / over) * SIZE_MARGIN))
        return replace(setting, side=max(MIN_SIDE, int(setting.side * scale)))
    if kind == "gif":
        fewer = [n for n in GIF_COLOURS if setting.colours is None or n < setting.colours]
        if fewer:
            return replace(setting, colours=fewer[0])
    return None


def _apply(clip: Clip, setting: _Setting) -> Clip:
    """The pixel work of ``setting`` (size, colours) on frames already stepped."""
    clip = at_side(clip, setting.side)
    return with_colours(clip, setting.colours) if setting.colours else clip


def _sample(clip: Clip) -> tuple[Clip, float]:
    """A few runs of consecutive frames (so a GIF's or H.264's frame-to-frame savings still
    count) standing for the whole clip, and how many times larger the whole is; a short clip
    is its own sample."""
    n, run = len(clip.frames), SAMPLE_RUN
    if n <= 2 * SAMPLE_RUNS * run:
        return clip, 1.0
    picks = [i for start in (0, (n - run) // 2, n - run) for i in range(start, start + run)]
    sample = replace(clip, frames=[clip.frames[i] for i in picks],
                     durations_ms=[clip.durations_ms[i] for i in picks], audio=None)
    return sample, n / len(picks)


def fit_clip(clip: Clip, limit: int, where: str, meta: ResultMeta | None = None) -> FittedClip:
    """``clip`` encoded as its own kind within ``limit`` bytes: fps lowered first (not under
    ``MIN_FPS``), then size (not under ``MIN_SIDE``), then a GIF's colours. ``UserError``
    (one line naming ``where``'s limit) when even the least of all three does not fit.
    ``meta``'s settings go inside the file, as in a still result (``engine.resultinfo``).

    Each rung is judged by encoding a sample of the frames (a long clip's full encode costs
    seconds); only a rung whose estimate fits is encoded whole, and if the estimate was off
    (audio, motion between the sampled runs), the next rungs are judged with that error."""
    kind = clip.kind
    settings = settings_of(meta) if meta is not None else None
    max_step = max(1, math.floor(clip.fps / MIN_FPS + 1e-9)) if len(clip.frames) > 1 else 1
    setting = _Setting(side=max(clip.size))
    correction, encodes, estimates = 1.0, 0, 0
    while True:
        # Walk down the ladder on estimates until one fits.
        while True:
            stepped = at_fps_step(clip, setting.step)
            sample, scale = _sample(stepped)
            estimates += 1
            applied = _apply(sample, setting)
            sampled = encode_clip(applied, kind, settings)[0]
            estimate = len(sampled) * scale * correction
            lower = _lower(setting, estimate / limit, max_step, kind)
            if estimate <= limit or lower is None or estimates >= MAX_ESTIMATES:
                break
            setting = lower
        # The whole clip at that rung (already encoded when the sample was the whole clip).
        final = applied if scale == 1.0 else _apply(stepped, setting)
        data = sampled if scale == 1.0 else encode_clip(final, kind, settings)[0]
        encodes += 1
        spent = encodes >= MAX_ENCODES or estimates >= MAX_ESTIMATES
        if len(data) <= limit or lower is None or spent:
            break
        correction *= len(data) / estimate  # the sample's error, carried to the next rungs
        setting = _lower(setting, len(data) / limit, max_step, kind) or setting

    lowered = tuple(part for part, changed in (
        (f"{final.fps:.3g} fps", setting.step > 1),
        (f"{max(final.size)} px", setting.side < max(clip.size)),
        (f"{setting.colours} colours", setting.colours is not None)) if changed)
    if len(data) > limit:
        log.info("clip of %d bytes does not fit %s's %d (%d estimates, %d whole encodings; %s)",
                 len(data), where, limit, estimates, encodes, ", ".join(lowered) or "nothing lowered")
        tried = f" even at {_and(lowered)}" if lowered else ""
        raise UserError(f"The result is {size_text(len(data))}{tried}, over {where}'s "
                        f"{size_text(limit)} limit; try a shorter clip or a smaller size.")
    if lowered:
        log.info("clip fitted to %s's %d bytes (%d estimates, %d whole encodings): %s", where,
                 limit, estimates, encodes, ", ".join(lowered))
    return FittedClip(data=data, kind=kind, frames=len(final.frames), fps=final.fps,
                      seconds=final.seconds, size=final.size, lowered=lowered, limit=limit,
                      where=where, encodes=encodes)
