"""Settings admins set per place: a whole space (a server, a workspace) or one room in it.

Plain data in and out; what the settings mean (which wins, what they refuse) is the
application's (``stylebot/server_settings.py``). A row holds only what was set: None
inherits.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select

from storage.db import Database
from storage.models import PlaceSettings, utcnow

SETTINGS = ("default_method", "default_size", "allowed_methods", "jobs_per_user", "allow_sd",
            "results")
SPACE_WIDE = ""  # the room of a row that holds the whole space's settings


@dataclass(frozen=True)
class PlaceSettingsRecord:
    platform: str
    space: str
    room: str  # SPACE_WIDE for the space's own row
    default_method: str | None = None
    default_size: int | None = None
    allowed_methods: list[str] | None = None
    jobs_per_user: int | None = None
    allow_sd: bool | None = None
    results: str | None = None
    updated_at: datetime | None = None
    updated_by: str = ""

    def values(self) -> dict[str, Any]:
        """The settings this row sets (the ones not None)."""
        return {name: getattr(self, name) for name in SETTINGS if getattr(self, name) is not None}


def _record(row: PlaceSettings) -> PlaceSettingsRecord:
    names = [f.name for f in fields(PlaceSettingsRecord)]
    return PlaceSettingsRecord(**{name: getattr(row, name) for name in names})


async def get_settings(db: Database, platform: str, space: str,
                       room: str) -> tuple[PlaceSettingsRecord | None, PlaceSettingsRecord | None]:
    """The space's row and the room's row (either None when nothing was set there)."""
    async with db.session() as session:
        rows = (await session.execute(select(PlaceSettings).where(
            PlaceSettings.platform == platform, PlaceSettings.space == space,
            or_(PlaceSettings.room == SPACE_WIDE, PlaceSettings.room == room)))).scalars().all()
    by_room = {row.room: _record(row) for row in rows}
    return by_room.get(SPACE_WIDE), (by_room.get(room) if room != SPACE_WIDE else None)


async def list_settings(db: Database, platform: str, space: str) -> list[PlaceSettingsRecord]:
    """Every row of one space: its own first, then its rooms by id."""
    async with db.session() as session:
        rows = (await session.execute(select(PlaceSettings).where(
            PlaceSettings.platform == platform, PlaceSettings.space == space)
            .order_by(PlaceSettings.room))).scalars().all()
    return [_record(row) for row in rows]


async def save_settings(db: Database, platform: str, space: str, room: str,
                        changes: dict[str, Any], *, updated_by: str) -> PlaceSettingsRecord:
    """Set (or, with None, clear) some settings of a place, keeping the others."""
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown place settings: {', '.join(sorted(unknown))}")
    async with db.write() as session:
        row = (await session.execute(select(PlaceSettings).where(
            PlaceSettings.platform == platform, PlaceSettings.space == space,
            PlaceSettings.room == room))).scalar_one_or_none()
        if row is None:
            row = PlaceSettings(platform=platform, space=space, room=room)
            session.add(row)
        for name, value in changes.items():
            setattr(row, name, list(value) if isinstance(value, (list, tuple)) else value)
        row.updated_at = utcnow()
        row.updated_by = updated_by
        await session.flush()
        return _record(row)


async def clear_settings(db: Database, platform: str, space: str, room: str) -> bool:
    """Forget every setting of one place; whether there were any."""
    async with db.write() as session:
        result = await session.execute(delete(PlaceSettings).where(
            PlaceSettings.platform == platform, PlaceSettings.space == space,
            PlaceSettings.room == room))
        return result.rowcount > 0
