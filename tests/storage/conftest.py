"""A fresh, migrated SQLite database file per test."""

from __future__ import annotations

import pytest

from storage.db import Database


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'stylebot.db'}"


@pytest.fixture
async def db(db_url):
    database = await Database(db_url).open()
    yield database
    await database.close()
