"""How front ends plug into the application without the application importing them.

A front end declares one ``Frontend`` and names it in pyproject.toml's
``stylebot.frontends`` entry points (``discord = "bot.discord:FRONTEND"``). ``stylebot run``
checks the settings of each, starts those that are configured and mounts web routes; the
CLI adds their commands. So the arrows point one way: ``bot/`` imports the application,
never the reverse. A declaration must import cheaply (``stylebot --help`` loads them all):
heavy imports belong inside its functions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from .service import StyleService
    from .settings import Settings

log = logging.getLogger(__name__)

ENTRY_POINTS = "stylebot.frontends"


class Status(Protocol):
    """Where a running front end reports its connection (shown on /healthz)."""

    def set(self, state: str, detail: str = "") -> None: ...


def _never(settings: "Settings") -> bool:
    return False


def _nothing_to_say(settings: "Settings") -> list[str]:
    return []


@dataclass(frozen=True)
class Frontend:
    """What a front end tells the application about itself.

    ``problems`` and ``warnings`` check its settings, one line each (problems stop the start).
    ``run(service, settings, status, stopping)`` serves a connection until cancelled; once
    ``stopping`` is set (the queue has stopped and told waiting users) it delivers those
    messages and returns. ``mount(app, service, settings)`` adds web routes to the one HTTP
    server. ``add_commands(subparsers)`` adds CLI commands whose parsers set
    ``handler(args, settings) -> exit status``.
    """

    name: str
    configured: Callable[["Settings"], bool] = _never
    problems: Callable[["Settings"], list[str]] = _nothing_to_say
    warnings: Callable[["Settings"], list[str]] = _nothing_to_say
    run: Callable[["StyleService", "Settings", Status, asyncio.Event], Awaitable[None]] | None = None
    mount: Callable[["web.Application", "StyleService", "Settings"], Any] | None = None
    add_commands: Callable[[Any], None] | None = None

    @property
    def is_chat(self) -> bool:
        """A connection to a chat platform (as opposed to pages on our own HTTP server)."""
        return self.run is not None


def installed_frontends() -> dict[str, Frontend]:
    """Every front end this installation declares; one that fails to import is logged and left out."""
    found: dict[str, Frontend] = {}
    for entry in sorted(entry_points(group=ENTRY_POINTS), key=lambda e: e.name):
        try:
            frontend = entry.load()
        except Exception as exc:  # noqa: BLE001 - one broken front end must not stop the others
            log.error("front end %s (%s) cannot be loaded: %s: %s", entry.name, entry.value,
                      type(exc).__name__, exc)
            continue
        found[frontend.name] = frontend
    return found


def chat_frontends(frontends: dict[str, Frontend], settings: "Settings") -> list[Frontend]:
    """The chat front ends whose settings are present."""
    return [f for f in frontends.values() if f.is_chat and f.configured(settings)]
