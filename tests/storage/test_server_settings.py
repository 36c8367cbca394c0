"""Per-place settings: stored per (platform, space, room), merged on save, cleared with None."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from storage import server_settings as store


async def test_settings_saved_merged_and_read_back_per_place(db):
    assert await store.get_settings(db, "discord", "g1", "c1") == (None, None)
    await store.save_settings(db, "discord", "g1", "", {"default_method": "fast", "jobs_per_user": 2},
                              updated_by="u1")
    await store.save_settings(db, "discord", "g1", "c1", {"allowed_methods": ["hub", "fast"]},
                              updated_by="u2")
    saved = await store.save_settings(db, "discord", "g1", "", {"default_size": 512},
                                      updated_by="u3")
    assert saved.values() == {"default_method": "fast", "jobs_per_user": 2, "default_size": 512}
    assert saved.updated_by == "u3" and saved.updated_at is not None
    space, room = await store.get_settings(db, "discord", "g1", "c1")
    assert space.values() == saved.values()
    assert room.values() == {"allowed_methods": ["hub", "fast"]}
    # Other places, platforms and rooms see nothing of it.
    assert await store.get_settings(db, "slack", "g1", "c1") == (None, None)
    assert (await store.get_settings(db, "discord", "g1", "c2"))[1] is None
    assert (await store.get_settings(db, "discord", "g2", "c1")) == (None, None)
    assert [r.room for r in await store.list_settings(db, "discord", "g1")] == ["", "c1"]


async def test_settings_none_clears_one_and_clear_forgets_the_place(db):
    await store.save_settings(db, "slack", "T1", "C1", {"allow_sd": False, "results": "ephemeral"},
                              updated_by="U1")
    again = await store.save_settings(db, "slack", "T1", "C1", {"allow_sd": None}, updated_by="U1")
    assert again.values() == {"results": "ephemeral"}
    assert await store.clear_settings(db, "slack", "T1", "C1") is True
    assert await store.clear_settings(db, "slack", "T1", "C1") is False
    assert await store.get_settings(db, "slack", "T1", "C1") == (None, None)


async def test_settings_refuse_unknown_names_and_bad_results(db):
    with pytest.raises(ValueError, match="unknown place settings: colour"):
        await store.save_settings(db, "discord", "g", "", {"colour": "red"}, updated_by="u")
    # SQLite says "CHECK constraint failed", PostgreSQL "violates check constraint".
    with pytest.raises(IntegrityError, match="(?i)check constraint.*results"):
        await store.save_settings(db, "discord", "g", "", {"results": "loud"}, updated_by="u")
