"""A gate, a list and a dict kept in files, for toy methods that may run in an engine process.

They behave like ``threading.Event``, ``list`` and ``dict`` for what the tests do with them
(set/clear/wait, append/clear/compare, get/set), and both processes see the same values.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class SharedGate:
    """Open (set) while the file is absent."""

    def __init__(self, closed_marker: Path) -> None:
        self._marker = closed_marker

    def set(self) -> None:
        self._marker.unlink(missing_ok=True)

    def clear(self) -> None:
        self._marker.touch()

    def is_set(self) -> bool:
        return not self._marker.exists()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_set():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True


class SharedList:
    """Appends are JSON lines; comparing reads them all back."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def append(self, item: Any) -> None:
        with self._path.open("a") as f:
            f.write(json.dumps(item) + "\n")

    def clear(self) -> None:
        self._path.unlink(missing_ok=True)

    def items(self) -> list:
        if not self._path.exists():
            return []
        return [json.loads(line) for line in self._path.read_text().splitlines()]

    def __iter__(self):
        return iter(self.items())

    def __len__(self) -> int:
        return len(self.items())

    def __getitem__(self, index):
        return self.items()[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, SharedList)) and self.items() == list(other)

    def __repr__(self) -> str:
        return repr(self.items())


class SharedDict:
    """A small dict written whole on each change."""

    def __init__(self, path: Path, initial: dict[str, Any]) -> None:
        self._path = path
        if not path.exists():
            for key, value in initial.items():
                self[key] = value

    def __getitem__(self, key: str) -> Any:
        return json.loads(self._path.read_text())[key]

    def __setitem__(self, key: str, value: Any) -> None:
        data = json.loads(self._path.read_text()) if self._path.exists() else {}
        data[key] = value
        partial = self._path.with_suffix(".partial")
        partial.write_text(json.dumps(data))
        partial.replace(self._path)  # a reader never sees half a file
