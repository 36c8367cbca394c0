"""Where each user's own trained styles live, and what they may keep.

One folder per requester, ``<home>/styles/<platform>/<user>/``, holding ``<name>.pth`` (the
network the fast method loads) and ``index.json`` (when and from what each was trained).
The networks on disk are the truth; the index only describes them. The folder is reached
from the requester alone, so one user's request can never name another's file.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.files import atomic_write
from engine.methods.fast import (MULTI_PREFIX, NAMED_STYLES, TRAINED_NAME, own_names,
                                 trained_names)
from engine.request import Requester

log = logging.getLogger(__name__)

SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # platform names and chat user ids, never a path
NETWORK_BYTES = 6_800_000  # one TransformerNet saved in fp32 (1,679,235 parameters)
INDEX = "index.json"
COMMAND_WORDS = frozenset({"delete", "list", "help"})  # `/train delete x` must not train "delete"


@dataclass(frozen=True)
class Usage:
    count: int
    bytes: int


class TrainedStyles:
    """Per-user folders of trained fast networks, their names and their limits."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.root = Path(settings.home) / "styles"

    def folder(self, requester: Requester) -> Path | None:
        """The requester's own folder (it may not exist yet); None for an id that is no name."""
        if not (SAFE_ID.fullmatch(requester.platform) and SAFE_ID.fullmatch(requester.user_id)):
            return None
        return self.root / requester.platform / requester.user_id

    def names(self, requester: Requester) -> list[str]:
        return own_names(self.folder(requester))

    def usage(self, requester: Requester) -> Usage:
        folder = self.folder(requester)
        if folder is None or not folder.is_dir():
            return Usage(0, 0)
        files = [p for p in folder.glob("*.pth") if p.is_file()]
        return Usage(len(files), sum(p.stat().st_size for p in files))

    def check_new(self, requester: Requester, name: str) -> Path:
        """Refuse a name or a new style the user may not have; their folder otherwise."""
        folder = self.folder(requester)
        if folder is None:
            raise UserError("Your user id cannot name a folder here, so you cannot train styles.")
        name = name.strip()
        if not TRAINED_NAME.fullmatch(name):
            raise UserError(f"The name {name!r} must be 1-64 letters, digits, '_' or '-', "
                            "starting with a letter or digit.")
        if name.lower().replace("-", "_") in NAMED_STYLES or name.startswith(MULTI_PREFIX):
            raise UserError(f"'{name}' is a built-in style; choose another name.")
        if name.lower() in COMMAND_WORDS:
            raise UserError(f"'{name}' is a word the commands use; choose another name.")
        if name in trained_names(self.settings):
            raise UserError(f"'{name}' is a style this server already has; choose another name.")
        if name in self.names(requester):
            raise UserError(f"You already have a style named '{name}'; choose another name.")
        usage = self.usage(requester)
        limit = self.settings.trained_styles_per_user
        if usage.count >= limit:
            raise UserError(f"You have {usage.count} trained style{'s' if usage.count != 1 else ''}"
                            f" (the limit is {limit}); you cannot train another.")
        room = int(self.settings.trained_mb_per_user * 1_000_000)
        if usage.bytes + NETWORK_BYTES > room:
            raise UserError(f"Your trained styles take {usage.bytes / 1e6:.1f} MB and another needs "
                            f"{NETWORK_BYTES / 1e6:.1f} MB; the limit is "
                            f"{self.settings.trained_mb_per_user:g} MB per user.")
        return folder

    def delete(self, requester: Requester, name: str) -> None:
        """Delete one of the requester's styles; the same refusal whoever else has that name."""
        name = name.strip()
        mine = self.names(requester)
        if name not in mine:
            listed = ("Your styles: " + ", ".join(mine) + ".") if mine else "You have no styles yet."
            raise UserError(f"You have no style named '{name}'. {listed}")
        folder = self.folder(requester)
        assert folder is not None
        (folder / f"{name}.pth").unlink(missing_ok=True)
        index = self.index(requester)
        if index.pop(name, None) is not None:
            self._write_index(folder, index)

    def record(self, requester: Requester, name: str, *, steps: int, source: str) -> None:
        """Describe a network just saved in the requester's folder."""
        folder = self.folder(requester)
        assert folder is not None
        index = self.index(requester)
        index[name] = {"trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "steps": steps, "style_image": source,
                       "bytes": (folder / f"{name}.pth").stat().st_size}
        self._write_index(folder, index)

    @staticmethod
    def _write_index(folder: Path, index: dict[str, Any]) -> None:
        data = json.dumps(index, indent=1, sort_keys=True).encode()
        atomic_write(folder / INDEX, lambda tmp: Path(tmp).write_bytes(data))

    def index(self, requester: Requester) -> dict[str, Any]:
        """What the index says about the requester's styles (empty when unreadable)."""
        folder = self.folder(requester)
        path = folder / INDEX if folder is not None else None
        if path is None or not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("style index %s is unreadable (%s); starting a new one", path, exc)
            return {}
        return data if isinstance(data, dict) else {}
