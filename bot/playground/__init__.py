"""The local web playground: a page and its API over StyleService, served by `stylebot run`.

``app`` holds the routes and their guards, ``inputs`` reads uploads from forms, ``static/``
is the page itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stylebot.frontends import Frontend

if TYPE_CHECKING:
    from aiohttp import web

    from stylebot.service import StyleService
    from stylebot.settings import Settings


def _mount(app: "web.Application", service: "StyleService", settings: "Settings") -> None:
    from .app import add_playground

    add_playground(app, service, settings)


FRONTEND = Frontend(name="playground", mount=_mount)
