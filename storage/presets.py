"""Saved presets: a user's method, options and style images under a short name.

Every function takes the ``Database`` and the owner ``(platform, user_id)``. A preset of
another user is invisible: asking for it reads exactly like asking for one that never existed.
Results are frozen dataclasses, never ORM objects, so callers cannot trip over lazy loading.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from engine.errors import OptionError, PresetNotFound, UserError
from storage.db import Database
from storage.models import Preset, PresetStyle, utcnow

log = logging.getLogger(__name__)

MAX_PRESETS_PER_USER = 50
NAME_MAX_LEN = 32
_NAME_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{NAME_MAX_LEN}}}")
NAME_RULE = (f"preset name must be 1-{NAME_MAX_LEN} characters: "
             "letters, digits, '-' or '_'")


@dataclass(frozen=True)
class StyleBlob:
    """One style image as stored: the uploaded bytes, untouched."""

    data: bytes
    weight: float = 1.0
    mime: str = "application/octet-stream"
    filename: str = "style"

    def __repr__(self) -> str:
        return (f"StyleBlob({self.filename!r}, {len(self.data)} bytes, {self.mime}, "
                f"weight={self.weight})")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class PresetSummary:
    """A preset without its images, for listings (50 presets of images is a lot to load)."""

    name: str
    method: str
    options: dict[str, Any]
    style_count: int
    created_at: datetime
    last_used_at: datetime | None
    use_count: int


@dataclass(frozen=True)
class PresetRecord:
    """A whole preset, images included, ready to fill in a request."""

    name: str
    method: str
    options: dict[str, Any]
    styles: list[StyleBlob] = field(default_factory=list)
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    use_count: int = 0


def check_name(name: str) -> str:
    """The name as it will be stored (surrounding spaces dropped), or OptionError."""
    cleaned = name.strip() if isinstance(name, str) else ""
    if not _NAME_RE.fullmatch(cleaned):
        raise OptionError(f"{NAME_RULE} (got {_shown(name)}).")
    return cleaned


def _key(name: str) -> str:
    return name.strip().lower()


def _shown(name: object) -> str:
    """A name safe to echo back: short, one line."""
    text = str(name).replace("\n", " ")
    return repr(text if len(text) <= 40 else text[:37] + "...")


async def save_preset(db: Database, platform: str, user_id: str, name: str, method: str,
                      options: dict[str, Any], styles: list[StyleBlob],
                      replace: bool = False) -> PresetRecord:
    """Store a preset; ``replace=True`` overwrites one of the same name (any case).

    A replaced preset starts afresh: new creation time, no uses counted.
    """
    name = check_name(name)
    options = dict(options)
    styles = list(styles)
    for style in styles:
        if not isinstance(style.data, (bytes, bytearray)) or not style.data:
            raise ValueError(f"style {style.filename!r} has no image bytes")
    now = utcnow()
    try:
        async with db.write() as session:
            owned = (Preset.platform == platform) & (Preset.user_id == user_id)
            existing = await session.scalar(
                select(Preset).where(owned, Preset.name_key == _key(name)))
            if existing is not None and not replace:
                raise UserError(f"You already have a preset named '{existing.name}'; "
                                "delete it first or pick another name.")
            if existing is None:
                count = await session.scalar(select(func.count()).select_from(Preset)
                                             .where(owned))
                if count >= MAX_PRESETS_PER_USER:
                    raise UserError(f"You have {count} presets, the most allowed "
                                    f"({MAX_PRESETS_PER_USER}); delete one first.")
            else:
                # Start afresh; the old style rows go by ON DELETE CASCADE.
                await session.execute(delete(Preset).where(Preset.id == existing.id))
            preset = Preset(platform=platform, user_id=user_id, name=name, name_key=_key(name),
                            method=method, options=options, created_at=now,
                            last_used_at=None, use_count=0)
            preset.styles = [
                PresetStyle(position=i, weight=float(s.weight), image=bytes(s.data),
                            mime=s.mime, filename=s.filename, sha256=s.sha256)
                for i, s in enumerate(styles)]
            session.add(preset)
    except IntegrityError as exc:
        # Only reachable on backends without BEGIN IMMEDIATE, when two saves race.
        if "name_key" not in str(exc.orig):
            raise
        log.info("preset save raced with another: %s", exc.orig)
        raise UserError(f"You already have a preset named '{name}'; "
                        "delete it first or pick another name.") from exc
    log.info("preset saved: %s:%s %r (%s, %d styles)", platform, user_id, name, method,
             len(styles))
    return PresetRecord(name=name, method=method, options=options,
                        styles=[StyleBlob(bytes(s.data), float(s.weight), s.mime, s.filename)
                                for s in styles],
                        created_at=now, last_used_at=None, use_count=0)


async def list_presets(db: Database, platform: str, user_id: str) -> list[PresetSummary]:
    """The user's presets by name (case-insensitive order), without their images."""
    style_counts = (select(PresetStyle.preset_id, func.count().label("n"))
                    .group_by(PresetStyle.preset_id).subquery())
    query = (select(Preset, func.coalesce(style_counts.c.n, 0))
             .outerjoin(style_counts, style_counts.c.preset_id == Preset.id)
             .where(Preset.platform == platform, Preset.user_id == user_id)
             .order_by(Preset.name_key))
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    return [PresetSummary(name=p.name, method=p.method, options=dict(p.options),
                          style_count=n, created_at=p.created_at,
                          last_used_at=p.last_used_at, use_count=p.use_count)
            for p, n in rows]


async def get_preset(db: Database, platform: str, user_id: str, name: str) -> PresetRecord:
    """The whole preset, or PresetNotFound naming the presets the user does have."""
    async with db.session() as session:
        preset = await session.scalar(
            select(Preset).options(selectinload(Preset.styles))
            .where(Preset.platform == platform, Preset.user_id == user_id,
                   Preset.name_key == _key(str(name))))
        if preset is None:
            raise await _not_found(session, platform, user_id, name)
        styles = []
        for style in preset.styles:
            if hashlib.sha256(style.image).hexdigest() != style.sha256:
                raise RuntimeError(f"preset {preset.id} style {style.position}: stored image "
                                   "does not match its sha256; the database is damaged")
            styles.append(StyleBlob(style.image, style.weight, style.mime, style.filename))
        return PresetRecord(name=preset.name, method=preset.method,
                            options=dict(preset.options), styles=styles,
                            created_at=preset.created_at, last_used_at=preset.last_used_at,
                            use_count=preset.use_count)


async def mark_used(db: Database, platform: str, user_id: str, name: str) -> None:
    """Count one use of the preset and remember when (for listings and cleanup)."""
    async with db.write() as session:
        result = await session.execute(
            update(Preset)
            .where(Preset.platform == platform, Preset.user_id == user_id,
                   Preset.name_key == _key(str(name)))
            .values(use_count=Preset.use_count + 1, last_used_at=utcnow()))
        if result.rowcount == 0:
            raise await _not_found(session, platform, user_id, name)


async def delete_preset(db: Database, platform: str, user_id: str, name: str) -> None:
    """Delete the preset; its style images go with it (ON DELETE CASCADE)."""
    async with db.write() as session:
        result = await session.execute(
            delete(Preset).where(Preset.platform == platform, Preset.user_id == user_id,
                                 Preset.name_key == _key(str(name))))
        if result.rowcount == 0:
            raise await _not_found(session, platform, user_id, name)
    log.info("preset deleted: %s:%s %r", platform, user_id, name)


async def _not_found(session: Any, platform: str, user_id: str, name: str) -> PresetNotFound:
    names = (await session.scalars(
        select(Preset.name).where(Preset.platform == platform, Preset.user_id == user_id)
        .order_by(Preset.name_key))).all()
    have = f"Your presets: {', '.join(names)}." if names else "You have no presets yet."
    return PresetNotFound(f"You have no preset named {_shown(name)}. {have}")
