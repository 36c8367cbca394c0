"""Opening the database: engine, SQLite pragmas, migrations to head, sessions.

SQLite is the default (one file in the data folder). Its Python driver normally opens a
transaction only before a write, so a "count, then insert" check could race with another
task; we take over BEGIN ourselves so that reads are repeatable and writes (``write()``)
start with ``BEGIN IMMEDIATE``, which makes concurrent writers queue instead of interleave.

PostgreSQL (``postgresql+asyncpg://``, for several bot processes sharing one database) gets
the same guarantee from a transaction-scoped advisory lock that every ``write()`` and every
migration run takes first: writers queue, readers never wait, and the lock goes with the
commit or rollback. Serialising all writers is cheap at a bot's write rate and, unlike
SERIALIZABLE, needs no retry loop around every write.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (AsyncEngine, AsyncSession, async_sessionmaker,
                                    create_async_engine)

from engine.errors import UserError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_BEGIN_OPTION = "stylebot_sqlite_begin"
# How long a writer waits for another writer's lock before failing with "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30.0
# PostgreSQL's stand-in for BEGIN IMMEDIATE: one advisory lock per database, taken by writers.
# Any fixed 64-bit number works; this one is "stylebot" in ASCII.
PG_WRITE_LOCK = 0x7374796C65626F74
_PG_TAKE_WRITE_LOCK = text(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")


class DatabaseUnavailable(UserError):
    """The database cannot be opened or written: a setup problem, said in one line."""


class Database:
    """One database, opened once at start and shared by everything that persists."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._write_sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("Database is not open; call `await db.open()` first")
        return self._engine

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.url).get_backend_name() == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return make_url(self.url).get_backend_name() == "postgresql"

    async def open(self) -> Database:
        """Create the engine and bring the schema up to the newest migration."""
        if self._engine is not None:
            return self
        url = make_url(self.url)
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            with self._reported("created"):
                _make_parent_folder(url.database)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        engine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
            event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        # Connections from this engine begin with BEGIN IMMEDIATE (ignored off SQLite).
        write_engine = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        try:
            with self._reported("opened"):
                async with write_engine.begin() as conn:
                    if self.is_postgres:  # two processes starting together migrate once
                        await conn.execute(_PG_TAKE_WRITE_LOCK)
                    await conn.run_sync(_upgrade_to_head, self.url)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(write_engine, expire_on_commit=False)
        log.info("database open: %s", url.render_as_string(hide_password=True))
        return self

    def session(self) -> AsyncSession:
        """A session for reading (``async with db.session() as s: ...``); commit yourself."""
        if self._sessions is None:
            raise RuntimeError("Database is not open; call `await db.open()` first")
        return self._sessions()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction holds the write lock from its first statement.

        Commits when the block ends without error, rolls back otherwise. Checks made inside
        (a count, a name lookup) stay true until the commit.
        """
        if self._write_sessions is None:
            raise RuntimeError("Database is not open; call `await db.open()` first")
        with self._reported("written"):
            async with self._write_sessions() as session, session.begin():
                if self.is_postgres:
                    await session.execute(_PG_TAKE_WRITE_LOCK)
                yield session

    @contextmanager
    def _reported(self, doing: str) -> Iterator[None]:
        """The driver's refusal (read-only file, missing folder, no permission) as one line."""
        try:
            yield
        except (OperationalError, OSError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            if "readonly" in reason or "read-only" in reason:
                reason = "it is read-only"
            shown = make_url(self.url).render_as_string(hide_password=True)
            raise DatabaseUnavailable(f"The database {shown} cannot be {doing}: {reason}. Check "
                                      "STYLEBOT_DATABASE_URL and the data folder's permissions.") from exc

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = self._sessions = self._write_sessions = None

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def open_database(url: str) -> Database:
    """A migrated, open database at ``url`` (an SQLAlchemy async URL)."""
    return await Database(url).open()


def is_database_url(url: str) -> bool:
    """Whether SQLAlchemy can parse ``url``, so a typo is reported at start, not at first use."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError:
        return False
    return True


def database_url_problem(url: str) -> str | None:
    """Why ``url`` cannot work here, in words for STYLEBOT_DATABASE_URL's owner; None if it can."""
    from importlib.util import find_spec

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    if parsed.get_driver_name() != "asyncpg":
        return "PostgreSQL is reached through asyncpg: start the URL with postgresql+asyncpg://"
    if find_spec("asyncpg") is None:
        return "PostgreSQL needs asyncpg: pip install -e '.[postgres]'"
    return None


def _make_parent_folder(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Stop the driver from issuing its own (late) BEGIN; _sqlite_on_begin issues ours.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL this stays corruption-safe; a power cut may lose only the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def alembic_config(url: str) -> Any:
    """An Alembic config for our shipped migrations; no alembic.ini needed."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini interpolation treats '%' specially.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade_to_head(connection: Connection, url: str) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = alembic_config(url)
    script = ScriptDirectory.from_config(config)
    current = MigrationContext.configure(connection).get_current_heads()
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise RuntimeError(
            f"the database at {make_url(url).render_as_string(hide_password=True)} is at schema "
            f"revision {', '.join(unknown)}, which this version of Stylebot does not know; "
            "it was probably written by a newer version")
    if set(current) == set(script.get_heads()):
        return
    log.info("migrating database from %s to %s", ", ".join(current) or "empty",
             ", ".join(script.get_heads()))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
