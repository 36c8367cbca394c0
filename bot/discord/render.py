"""What the Discord adapter says: message texts, embeds and upload-sized images.

Pure functions of engine data (events, method descriptions, presets), kept apart from the
discord.py plumbing so the wording lives in one place and is easy to read and change.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from engine.images import encode_result

from stylebot.results import (format_options, progress_bar, queue_eta, queue_where, settings_lines,
                              stats_lines, value_text)

if TYPE_CHECKING:
    from PIL import Image

    from engine.events import ResultMeta
    from stylebot.fitting import FittedClip
    from stylebot.service import PresetRecord, PresetSummary
    from stylebot.service import QueuedJob, ResultInfo

log = logging.getLogger(__name__)

EMBED_TOTAL_LIMIT = 6000  # Discord's limit on all embeds of one message together
EMBEDS_PER_MESSAGE = 10
FIELD_LIMIT = 1024
COLOUR = discord.Colour.blurple()


def queued(job_id: str, position: int) -> str:
    where = "next in line" if position <= 1 else f"position {position} in the queue"
    return f"⏳ Queued: {where} (job `{job_id}`)."


def started(job_id: str, method: str, device: str) -> str:
    return f"🎨 Running **{method}** on {device}… (job `{job_id}`)"


def progress(job_id: str, method: str, fraction: float, stage: str = "") -> str:
    stage_text = f" · {stage}" if stage else ""
    return f"🎨 **{method}** `{progress_bar(fraction)}` {fraction * 100:.0f}%{stage_text} (job `{job_id}`)"


def done(job_id: str, seconds: float, where: str = "") -> str:
    suffix = f": {where}" if where else "."
    return f"✅ Done in {seconds:.1f} s (job `{job_id}`){suffix}"


def moved_to_channel(job_id: str) -> str:
    return (f"⏳ This is taking a while (job `{job_id}`); I'll post the result in this channel "
            "and mention you.")


def cancelled(job_id: str, reason: str) -> str:
    reason = reason.strip().rstrip(".") or "cancelled"
    return f"🛑 {reason[:1].upper()}{reason[1:]} (job `{job_id}`)."


def refused(message: str) -> str:
    return f"⚠️ {message}"


def bug(ref: str, what: str = "job") -> str:
    return f"❌ Something went wrong on our side ({what} {ref}); it has been logged."


def result_embed(job_id: str, meta: "ResultMeta", shown_options: dict[str, Any], filename: str,
                 *, requester: str, prompt: str | None = None, note: str = "",
                 clip: "FittedClip | None" = None) -> discord.Embed:
    """A short card under the result: method, what was chosen, seed and time; for a clip its
    frames and fps as delivered. A video plays from the attachment itself (an embed's image
    cannot be one), so only pictures are pulled into the card."""
    embed = discord.Embed(title=f"Stylized with {meta.method}", colour=COLOUR)
    embed.add_field(name="Options", value=_clip(format_options(shown_options), FIELD_LIMIT), inline=False)
    if prompt:
        embed.add_field(name="Prompt", value=_clip(prompt, FIELD_LIMIT), inline=False)
    if meta.seed is not None:
        embed.add_field(name="Seed", value=str(meta.seed))
    embed.add_field(name="Time", value=f"{meta.seconds:.1f} s on {meta.device}")
    size = clip.size if clip is not None else meta.size
    embed.add_field(name="Size", value=f"{size[0]}×{size[1]}")
    if clip is not None:  # what fitting lowered is said here, beside what it lowered
        embed.add_field(name="Clip", value=f"{clip.facts}; {clip.note}" if clip.note else clip.facts,
                        inline=False)
    if clip is None or not clip.is_video:
        embed.set_image(url=f"attachment://{filename}")
    footer = f"job {job_id} · for {requester}"
    embed.set_footer(text=f"{footer} · {note}" if note else footer)
    return embed


def settings_text(settings: dict[str, Any], command: str) -> str:
    """Apps → Stylebot info: the settings read back from an image, and how to reuse them."""
    lines = _clip("\n".join(settings_lines(settings)), 1000)
    command = _clip(command.replace("`", "'"), 900)  # inside a code block, which must close
    return f"**Stylebot settings**\n{lines}\nUse these settings on a new photo:\n```\n{command}\n```"


def info_text(info: "ResultInfo") -> str:
    """The Info button: how the result was made, and the command that makes it again."""
    lines = _clip("\n".join(info.lines), 1400)
    command = _clip(info.command.replace("`", "'"), 500)  # inside a code block, which must close
    return f"**How this result was made**\n{lines}\nUse these settings on a new photo:\n```\n{command}\n```"


def encode_for_upload(image: "Image.Image", meta: "ResultMeta", limit: int,
                      stem: str) -> tuple[bytes, str, str]:
    """The result fit to Discord's upload limit, its settings inside: (bytes, filename, note)."""
    encoded = encode_result(image, meta, max_bytes=limit)
    if encoded.format == "png":
        note = ""
    elif encoded.resized:
        if len(encoded.data) > limit:
            log.warning("result still %d bytes at %dx%d; sending it anyway", len(encoded.data), *encoded.size)
        note = f"shrunk to {encoded.size[0]}×{encoded.size[1]} to fit the upload limit"
    else:
        note = f"JPEG q{encoded.quality} to fit the upload limit"
    return encoded.data, f"{stem}.{encoded.format}", note


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- information commands ----------------------------------------------------------------

def method_embed(info: dict[str, Any]) -> discord.Embed:
    """One method for /methods: what it does, what it needs, its options, whether it can run."""
    status = info.get("status") or ("ready" if info.get("ready") else "weights missing")
    embed = discord.Embed(title=f"{info['name']}: {info['title']} ({status})",
                          description=_clip(info["summary"], 4096), colour=COLOUR)
    needs = []
    if info.get("min_styles"):
        needs.append(f"{info['min_styles']}-{info['max_styles']} style image(s)")
    elif info.get("max_styles"):
        needs.append(f"up to {info['max_styles']} style image(s)")
    if info.get("needs_prompt"):
        needs.append("a prompt")
    if info.get("needs_gpu"):
        needs.append("a GPU")
    if needs:
        embed.add_field(name="Needs", value=", ".join(needs), inline=False)
    lines = []
    for o in info.get("options", []):
        default = "" if o["default"] is None else f", default {value_text(o['default'])}"
        lines.append(f"`{o['name']}` ({o['range']}{default})")
    embed.add_field(name="Options", value=_clip("\n".join(lines) or "none", FIELD_LIMIT), inline=False)
    if info.get("models"):
        embed.add_field(name="Models here", value=_clip(", ".join(info["models"]), FIELD_LIMIT),
                        inline=False)
    missing = [name for name, where in info.get("weights", {}).items() if where == "missing"]
    if missing:
        embed.add_field(name="Missing weights", value=_clip(", ".join(missing), FIELD_LIMIT), inline=False)
    return embed


def chunk_embeds(embeds: list[discord.Embed]) -> list[list[discord.Embed]]:
    """Group embeds into messages that respect Discord's per-message limits."""
    chunks: list[list[discord.Embed]] = []
    current: list[discord.Embed] = []
    size = 0
    for embed in embeds:
        n = len(embed)
        if current and (size + n > EMBED_TOTAL_LIMIT or len(current) >= EMBEDS_PER_MESSAGE):
            chunks.append(current)
            current, size = [], 0
        current.append(embed)
        size += n
    if current:
        chunks.append(current)
    return chunks


def queue_text(jobs: list["QueuedJob"]) -> str:
    if not jobs:
        return "You have no jobs queued or running."
    lines = []
    for job in jobs:
        eta = queue_eta(job)
        lines.append(f"`{job.job_id}` {job.method}: {queue_where(job)}" + (f", {eta}" if eta else ""))
    return "Your jobs:\n" + "\n".join(lines) + "\nCancel one with /cancel job:<id>."


def stats_text(stats: list, days: int | None) -> str:
    """/stats: the job log per method, in a code block so the columns stay put."""
    period = f"the last {days} day(s)" if days else "the whole job log"
    body = _clip("\n".join(stats_lines(stats)).replace("`", "'"), 1900)
    return f"**Stylebot stats** ({period})\n```\n{body}\n```"


def presets_text(presets: list["PresetSummary"]) -> str:
    if not presets:
        return "You have no presets yet; save one with /preset save."
    lines = [f"**{p.name}**: {p.method}, {format_options(p.options)}, "
             f"{p.style_count} style image(s), used {p.use_count}×" for p in presets]
    return _clip("Your presets:\n" + "\n".join(lines), 2000)


def preset_embed(record: "PresetRecord") -> discord.Embed:
    embed = discord.Embed(title=f"Preset {record.name}", colour=COLOUR)
    embed.add_field(name="Method", value=record.method)
    embed.add_field(name="Options", value=_clip(format_options(record.options), FIELD_LIMIT), inline=False)
    if record.styles:
        styles = ", ".join(f"{s.filename} (weight {s.weight:g})" for s in record.styles)
        embed.add_field(name="Style images", value=_clip(styles, FIELD_LIMIT), inline=False)
    embed.set_footer(text=f"used {record.use_count}× · /preset use name:{record.name}")
    return embed
