"""Small real front ends plugged into `stylebot run` the way bot/discord and bot/slack are.

They exercise the ``Frontend.run`` contract (run until cancelled; report on ``status``;
return once ``stopping`` is set) without a chat platform. Each records what it saw in ``SEEN``.
"""

from __future__ import annotations

import asyncio

from engine.errors import UserError
from stylebot.frontends import Frontend

SEEN: dict[str, list] = {}


async def run_polite(service, settings, status, stopping):
    """Connects, then waits for the shutdown signal and returns by itself."""
    status.set("connected", "as TestBot#0001")
    SEEN.setdefault("polite", []).append(("connected", service.accepting))
    await stopping.wait()
    SEEN["polite"].append(("stopping", service.accepting))


async def run_deaf(service, settings, status, stopping):
    """Ignores ``stopping``: runs until cancelled."""
    SEEN.setdefault("deaf", []).append("started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        SEEN["deaf"].append("cancelled")
        raise


async def run_refused(service, settings, status, stopping):
    """The platform refuses the login, as Discord does for a revoked token."""
    status.set("connected")
    await asyncio.sleep(0)
    raise UserError("Discord refused the token (401 Unauthorized); reset it in the Developer Portal.")


def chat(name: str, run) -> Frontend:
    """A chat front end that is always configured."""
    return Frontend(name=name, configured=lambda settings: True, run=run)


def with_pages(*chats: Frontend) -> dict[str, Frontend]:
    """The given chat front ends beside the real playground."""
    from bot.playground import FRONTEND as playground

    return {f.name: f for f in (*chats, playground)}
