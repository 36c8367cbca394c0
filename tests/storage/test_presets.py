"""Presets: per-user, case-insensitive names, byte-exact images, survive restarts."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from engine.errors import OptionError, PresetNotFound, UserError
from storage.db import Database
from storage.presets import (MAX_PRESETS_PER_USER, PresetRecord, StyleBlob, delete_preset,
                             get_preset, list_presets, mark_used, save_preset)

ALICE = ("discord", "111")
BOB = ("discord", "222")


def blobs(*sizes: int) -> list[StyleBlob]:
    # Random bytes with NULs and every byte value: anything lossy would show.
    return [StyleBlob(os.urandom(n) + bytes(range(256)), weight=0.5 + i, mime="image/png",
                      filename=f"style{i}.png") for i, n in enumerate(sizes)]


async def save(db, owner, name, method="fast", options=None, styles=(), **kw) -> PresetRecord:
    return await save_preset(db, *owner, name, method, options or {}, list(styles), **kw)


async def style_rows(db) -> int:
    async with db.session() as s:
        return (await s.execute(text("SELECT count(*) FROM preset_styles"))).scalar()


async def test_save_and_get_round_trip_byte_exact_in_order(db):
    styles = blobs(40_000, 10, 3_000)
    saved = await save(db, ALICE, "Starry", "gatys", {"size": 256, "steps": 30,
                                                       "preserve_color": True}, styles)
    got = await get_preset(db, *ALICE, "starry")
    assert got == saved
    assert got.name == "Starry" and got.method == "gatys"
    assert got.options == {"size": 256, "steps": 30, "preserve_color": True}
    assert [s.data for s in got.styles] == [s.data for s in styles]
    assert [s.weight for s in got.styles] == [0.5, 1.5, 2.5]
    assert [(s.mime, s.filename) for s in got.styles] == [
        ("image/png", "style0.png"), ("image/png", "style1.png"), ("image/png", "style2.png")]
    assert got.use_count == 0 and got.last_used_at is None
    assert got.created_at.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - got.created_at).total_seconds()) < 60


async def test_presets_survive_a_restart(db_url):
    styles = blobs(5_000, 7)
    async with Database(db_url) as db:
        await save(db, ALICE, "keep", "adain", {"alpha": 0.8}, styles)
        await mark_used(db, *ALICE, "keep")
    async with Database(db_url) as db:  # a new process would do exactly this
        got = await get_preset(db, *ALICE, "KEEP")
        assert [s.data for s in got.styles] == [s.data for s in styles]
        assert got.options == {"alpha": 0.8} and got.use_count == 1
        assert [p.name for p in await list_presets(db, *ALICE)] == ["keep"]


async def test_other_users_presets_are_invisible(db):
    await save(db, ALICE, "mine", styles=blobs(100))
    await save(db, BOB, "bobs")
    with pytest.raises(PresetNotFound) as seen:
        await get_preset(db, *BOB, "mine")
    with pytest.raises(PresetNotFound) as absent:
        await get_preset(db, *BOB, "never-made")
    assert str(seen.value) == "You have no preset named 'mine'. Your presets: bobs."
    assert str(absent.value) == "You have no preset named 'never-made'. Your presets: bobs."
    with pytest.raises(PresetNotFound):
        await mark_used(db, *BOB, "mine")
    with pytest.raises(PresetNotFound):
        await delete_preset(db, *BOB, "mine")
    # Same user id on another platform is another person.
    with pytest.raises(PresetNotFound):
        await get_preset(db, "slack", "111", "mine")
    assert [p.name for p in await list_presets(db, *BOB)] == ["bobs"]
    alice = await get_preset(db, *ALICE, "mine")
    assert alice.use_count == 0 and len(alice.styles) == 1


async def test_not_found_without_presets_says_so(db):
    with pytest.raises(PresetNotFound, match=r"^You have no preset named 'x'\. "
                                             r"You have no presets yet\.$"):
        await get_preset(db, *ALICE, "x")


async def test_same_name_for_two_users_is_fine(db):
    await save(db, ALICE, "night", "fast", {"style": "candy"})
    await save(db, BOB, "Night", "fast", {"style": "udnie"})
    assert (await get_preset(db, *ALICE, "night")).options == {"style": "candy"}
    assert (await get_preset(db, *BOB, "night")).options == {"style": "udnie"}


async def test_names_are_unique_per_user_ignoring_case(db):
    await save(db, ALICE, "Sunset")
    with pytest.raises(UserError, match=r"^You already have a preset named 'Sunset'; "
                                        r"delete it first or pick another name\.$"):
        await save(db, ALICE, "sUNSET", "gatys")
    assert (await get_preset(db, *ALICE, "sunset")).method == "fast"


async def test_replace_overwrites_everything(db):
    await save(db, ALICE, "mix", "adain", {"alpha": 1.0}, blobs(1000, 2000, 3000))
    await mark_used(db, *ALICE, "mix")
    new_styles = blobs(500)
    await save(db, ALICE, "MIX", "gatys", {"steps": 10}, new_styles, replace=True)
    got = await get_preset(db, *ALICE, "mix")
    assert (got.name, got.method, got.options) == ("MIX", "gatys", {"steps": 10})
    assert [s.data for s in got.styles] == [new_styles[0].data]
    assert got.use_count == 0 and got.last_used_at is None
    assert await style_rows(db) == 1  # the old three are gone, not orphaned


async def test_replace_of_a_missing_name_just_saves(db):
    await save(db, ALICE, "fresh", replace=True)
    assert (await get_preset(db, *ALICE, "fresh")).name == "fresh"


@pytest.mark.parametrize("name", ["", " ", "a" * 33, "has space", "dot.name", "émoji", "a/b",
                                  "<@123>", "tab\tname"])
async def test_bad_names_are_refused_with_the_rule(db, name):
    with pytest.raises(OptionError, match=r"^preset name must be 1-32 characters: letters, "
                                          r"digits, '-' or '_'"):
        await save(db, ALICE, name)
    assert await list_presets(db, *ALICE) == []


@pytest.mark.parametrize("name", ["a", "A" * 32, "my-style_2", "  padded  "])
async def test_good_names_are_kept(db, name):
    await save(db, ALICE, name)
    assert [p.name for p in await list_presets(db, *ALICE)] == [name.strip()]


async def test_per_user_cap(db):
    for i in range(MAX_PRESETS_PER_USER):
        await save(db, ALICE, f"p{i}")
    with pytest.raises(UserError, match=r"50 presets, the most allowed \(50\); delete one"):
        await save(db, ALICE, "one-more")
    await save(db, ALICE, "p7", "gatys", replace=True)  # replacing is not adding
    await save(db, BOB, "one-more")  # the cap is per user
    await delete_preset(db, *ALICE, "p0")
    await save(db, ALICE, "one-more")
    assert len(await list_presets(db, *ALICE)) == MAX_PRESETS_PER_USER


async def test_delete_cascades_to_styles(db):
    await save(db, ALICE, "gone", styles=blobs(100, 200))
    await save(db, BOB, "stays", styles=blobs(300))
    assert await style_rows(db) == 3
    await delete_preset(db, *ALICE, "GONE")
    assert await style_rows(db) == 1
    with pytest.raises(PresetNotFound, match="You have no presets yet"):
        await get_preset(db, *ALICE, "gone")
    with pytest.raises(PresetNotFound, match="You have no preset named 'gone'"):
        await delete_preset(db, *ALICE, "gone")
    assert len((await get_preset(db, *BOB, "stays")).styles) == 1


async def test_mark_used_counts_and_stamps(db):
    await save(db, ALICE, "fav")
    for _ in range(3):
        await mark_used(db, *ALICE, "Fav")
    got = await get_preset(db, *ALICE, "fav")
    assert got.use_count == 3
    assert got.last_used_at is not None and got.last_used_at >= got.created_at


async def test_list_is_sorted_and_counts_styles_without_loading_them(db):
    await save(db, ALICE, "beta", "gatys", {"steps": 5}, blobs(10, 10))
    await save(db, ALICE, "Alpha", "fast")
    listed = await list_presets(db, *ALICE)
    assert [(p.name, p.method, p.style_count) for p in listed] == [
        ("Alpha", "fast", 0), ("beta", "gatys", 2)]
    assert listed[1].options == {"steps": 5}
    assert not hasattr(listed[1], "styles")


async def test_records_are_frozen_and_detached(db):
    saved = await save(db, ALICE, "frozen", options={"size": 64})
    with pytest.raises(AttributeError):
        saved.name = "other"  # type: ignore[misc]
    got = await get_preset(db, *ALICE, "frozen")
    got.options["size"] = 9999  # a caller's copy; the stored preset does not change
    assert (await get_preset(db, *ALICE, "frozen")).options == {"size": 64}


async def test_damaged_image_is_detected(db):
    await save(db, ALICE, "bits", styles=blobs(64))
    async with db.write() as s:
        await s.execute(text("UPDATE preset_styles SET image = :image"), {"image": b"\x00"})
    with pytest.raises(RuntimeError, match="does not match its sha256"):
        await get_preset(db, *ALICE, "bits")


async def test_concurrent_saves_for_many_users(db):
    owners = [("slack", f"U{i:03d}") for i in range(20)]
    styles = {owner: blobs(2_000 + i) for i, owner in enumerate(owners)}
    await asyncio.gather(*(save(db, owner, "same-name", "fast", {"n": i}, styles[owner])
                           for i, owner in enumerate(owners)))
    for i, owner in enumerate(owners):
        got = await get_preset(db, *owner, "same-name")
        assert got.options == {"n": i}
        assert [s.data for s in got.styles] == [s.data for s in styles[owner]]
    assert await style_rows(db) == 20


async def test_concurrent_saves_respect_cap_and_uniqueness(db):
    for i in range(MAX_PRESETS_PER_USER - 3):
        await save(db, ALICE, f"p{i}")
    results = await asyncio.gather(*(save(db, ALICE, f"new{i}") for i in range(8)),
                                   return_exceptions=True)
    assert sum(isinstance(r, PresetRecord) for r in results) == 3
    assert all(isinstance(r, (PresetRecord, UserError)) for r in results)
    assert len(await list_presets(db, *ALICE)) == MAX_PRESETS_PER_USER

    results = await asyncio.gather(*(save(db, BOB, "Race" if i % 2 else "race")
                                     for i in range(8)), return_exceptions=True)
    assert sum(isinstance(r, PresetRecord) for r in results) == 1
    assert all(isinstance(r, (PresetRecord, UserError)) for r in results)


async def test_concurrent_mark_used_loses_no_counts(db):
    await save(db, ALICE, "popular")
    await asyncio.gather(*(mark_used(db, *ALICE, "popular") for _ in range(20)))
    assert (await get_preset(db, *ALICE, "popular")).use_count == 20
