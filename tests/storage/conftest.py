"""A fresh, migrated database per test, on each backend: an SQLite file and a PostgreSQL database."""

from __future__ import annotations

import pytest

from storage.db import Database

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, request, tmp_path) -> str:
    if backend == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'stylebot.db'}"


@pytest.fixture
async def db(db_url):
    database = await Database(db_url).open()
    yield database
    await database.close()
