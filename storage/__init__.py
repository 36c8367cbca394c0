"""Persistence for presets and job records: bytes and plain data only.

Nothing here knows about chat platforms, torch or images; callers get frozen dataclasses.
"""

from storage.db import Database, open_database

__all__ = ["Database", "open_database"]
