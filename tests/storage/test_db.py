"""The schema comes from the shipped migrations, matches the models, and survives reopening."""

from __future__ import annotations

import logging
import sqlite3

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, text

from storage.db import Database, alembic_config, open_database
from storage.models import Base

TABLES = {"presets", "preset_styles", "jobs", "place_settings", "alembic_version"}


def _sqlite_file(url: str) -> str:
    return url.split(":///", 1)[1]


def _head(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def test_open_creates_folder_and_schema_on_empty_file(db_url, caplog):
    path = _sqlite_file(db_url)
    caplog.set_level(logging.INFO, logger="storage.db")
    db = await Database(db_url).open()
    await db.close()
    with sqlite3.connect(path) as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        versions = raw.execute("SELECT version_num FROM alembic_version").fetchall()
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


async def test_connections_enforce_foreign_keys_and_use_wal(db):
    async with db.session() as s:
        assert (await s.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await s.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await s.execute(text("PRAGMA synchronous"))).scalar() == 1  # NORMAL
    with pytest.raises(Exception, match="FOREIGN KEY"):
        async with db.write() as s:
            await s.execute(text("INSERT INTO preset_styles (preset_id, position, weight, image,"
                                 " mime, filename, sha256) VALUES (999, 0, 1, x'00', 'a', 'b',"
                                 " 'c')"))


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
        tables = await conn.run_sync(
            lambda c: {r[0] for r in c.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type='table'")})
        assert tables.isdisjoint({"presets", "preset_styles", "jobs", "place_settings"})
        await conn.run_sync(run, "head")
        assert await conn.run_sync(_diffs(Base.metadata)) == []
    await db.close()


async def test_database_from_a_newer_version_is_refused(db_url):
    await (await Database(db_url).open()).close()
    with sqlite3.connect(_sqlite_file(db_url)) as raw:
        raw.execute("UPDATE alembic_version SET version_num = 'f00dfeed'")
    with pytest.raises(RuntimeError, match="revision f00dfeed.*newer version"):
        await Database(db_url).open()


async def test_open_database_creates_and_migrates_the_file(db_url):
    db = await open_database(db_url)
    try:
        assert Path(_sqlite_file(db_url)).is_file()
        async with db.session() as s:
            assert (await s.execute(text("SELECT count(*) FROM presets"))).scalar() == 0
    finally:
        await db.close()


async def test_unopened_database_says_so():
    with pytest.raises(RuntimeError, match="not open"):
        Database("sqlite+aiosqlite://").session()
