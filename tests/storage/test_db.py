"""The schema comes from the shipped migrations, matches the models, and survives reopening.

Every test runs on SQLite and on PostgreSQL (the ``backend`` fixture); a few are about one
backend's own settings and say so with ``@only(...)``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, inspect, text
from sqlalchemy.exc import IntegrityError

from storage.db import Database, alembic_config, open_database
from storage.models import Base

TABLES = {"presets", "preset_styles", "jobs", "place_settings", "kept_results", "kept_images",
          "alembic_version"}


def only(backend: str):
    """Run a test on one backend only (direct parametrization overrides the fixture's)."""
    marks = [pytest.mark.postgres] if backend == "postgres" else []
    return pytest.mark.parametrize("backend", [pytest.param(backend, marks=marks)])


def _sqlite_file(url: str) -> str:
    return url.split(":///", 1)[1]


def _head(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_open_creates_folder_and_schema_on_empty_file(db_url, backend, caplog):
    caplog.set_level(logging.INFO, logger="storage.db")
    async with Database(db_url) as db:
        tables = await _tables(db)
        async with db.session() as s:
            versions = (await s.execute(text("SELECT version_num FROM alembic_version"))).all()
    if backend == "sqlite":
        assert Path(_sqlite_file(db_url)).is_file()
    assert TABLES <= tables
    assert versions == [(_head(db_url),)]
    assert "migrating database from empty" in caplog.text


async def test_reopen_is_idempotent_and_keeps_data(db_url, caplog):
    db = await Database(db_url).open()
    async with db.write() as s:
        await s.execute(text("INSERT INTO jobs (id, platform, user_id, method, options, status,"
                             " queued_at) VALUES ('j1', 'cli', 'u', 'fast', '{}', 'done',"
                             " '2026-01-01 00:00:00')"))
    await db.close()
    caplog.clear()
    caplog.set_level(logging.INFO, logger="storage.db")
    async with Database(db_url) as again:
        async with again.session() as s:
            assert (await s.execute(text("SELECT id FROM jobs"))).all() == [("j1",)]
            assert (await s.execute(text("SELECT version_num FROM alembic_version"))).all() \
                == [(_head(db_url),)]
    assert "migrating" not in caplog.text


async def test_foreign_keys_are_enforced(db):
    with pytest.raises(IntegrityError, match="(?i)foreign key"):
        async with db.write() as s:
            await s.execute(text("INSERT INTO preset_styles (preset_id, position, weight, image,"
                                 " mime, filename, sha256) VALUES (999, 0, 1, :image, 'a', 'b',"
                                 " 'c')"), {"image": b"\x00"})


@only("sqlite")
async def test_sqlite_connections_use_wal_and_foreign_keys(db):
    async with db.session() as s:
        assert (await s.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await s.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await s.execute(text("PRAGMA synchronous"))).scalar() == 1  # NORMAL


@only("postgres")
async def test_postgres_columns_have_native_types_and_checks(db):
    async with db.session() as s:
        types = dict((await s.execute(text(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public'"))).all())
        checks = set((await s.scalars(text(
            "SELECT conname FROM pg_constraint WHERE contype = 'c'"))).all())
    assert types["jobs.queued_at"] == types["presets.created_at"] == "timestamp with time zone"
    assert types["place_settings.updated_at"] == "timestamp with time zone"
    assert types["jobs.options"] == types["place_settings.allowed_methods"] == "json"
    assert types["preset_styles.image"] == "bytea"
    assert types["place_settings.allow_sd"] == "boolean"
    assert {"ck_jobs_status", "ck_place_settings_results"} <= checks
    with pytest.raises(IntegrityError, match="ck_jobs_status"):
        async with db.write() as s:
            await s.execute(text("INSERT INTO jobs (id, platform, user_id, method, options,"
                                 " status, queued_at) VALUES ('j', 'cli', 'u', 'fast', '{}',"
                                 " 'lost', now())"))


@only("postgres")
async def test_postgres_writers_queue_and_readers_do_not_wait(db):
    """db.write() takes one advisory lock, PostgreSQL's stand-in for BEGIN IMMEDIATE."""
    order: list[str] = []
    first_holds = asyncio.Event()

    async def first() -> None:
        async with db.write() as s:
            await s.execute(text("SELECT 1"))
            first_holds.set()
            await asyncio.sleep(0.3)
            order.append("first commits")

    async def second() -> None:
        await first_holds.wait()
        async with db.session() as s:  # a reader passes straight through
            await s.execute(text("SELECT count(*) FROM presets"))
            order.append("reader done")
        async with db.write() as s:
            await s.execute(text("SELECT 1"))
            order.append("second writes")

    await asyncio.gather(first(), second())
    assert order == ["reader done", "first commits", "second writes"]


def _diffs(metadata):
    def compare(conn):
        return compare_metadata(MigrationContext.configure(conn), metadata)
    return compare


async def test_migrated_schema_matches_models(db):
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diffs(Base.metadata)) == []


async def test_schema_comparison_catches_drift(db):
    """The check above can fail: a model the migrations lack shows up as a diff."""
    drifted = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    Table("jobs", drifted, Column("priority", Integer), extend_existing=True)
    async with db.engine.connect() as conn:
        diffs = await conn.run_sync(_diffs(drifted))
    assert [d[0] for d in diffs] == ["add_column"] and diffs[0][3].name == "priority"


async def test_migrations_downgrade_to_base_and_up_again(db_url):
    db = await Database(db_url).open()

    def run(conn, target):
        config = alembic_config(db_url)
        config.attributes["connection"] = conn
        if target == "base":
            command.downgrade(config, "base")
        else:
            command.upgrade(config, target)

    async with db.engine.begin() as conn:
        await conn.run_sync(run, "base")
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert tables.isdisjoint({"presets", "preset_styles", "jobs", "place_settings"})
        await conn.run_sync(run, "head")
        assert await conn.run_sync(_diffs(Base.metadata)) == []
    await db.close()


async def test_database_from_a_newer_version_is_refused(db_url):
    async with Database(db_url) as db, db.write() as s:
        await s.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(RuntimeError, match="revision f00dfeed.*newer version"):
        await Database(db_url).open()


async def test_open_database_creates_and_migrates(db_url):
    db = await open_database(db_url)
    try:
        async with db.session() as s:
            assert (await s.execute(text("SELECT count(*) FROM presets"))).scalar() == 0
    finally:
        await db.close()


async def test_unopened_database_says_so():
    with pytest.raises(RuntimeError, match="not open"):
        Database("sqlite+aiosqlite://").session()


async def test_datetimes_stay_utc_whatever_the_local_time_zone(db, monkeypatch):
    """Stored and read back as the same instant even where the process's clock is not UTC."""
    import time
    from datetime import datetime, timezone

    from storage.jobs import get_job, record_queued

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        await record_queued(db, "j-tz", "cli", "u", "fast", {})
        job = await get_job(db, "j-tz")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert job.queued_at.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - job.queued_at).total_seconds()) < 60
