"""Small real adapters plugged in through stylebot.process.ADAPTERS, the way bot/discord.py will be.

They exercise the adapter contract (run until cancelled; optional ``status`` and
``stopping`` keywords) without a chat platform. Each records what it saw in ``SEEN``.
"""

from __future__ import annotations

import asyncio

from engine.errors import UserError

SEEN: dict[str, list] = {}


async def run_polite(service, settings, *, status, stopping):
    """Connects, then waits for the shutdown signal and returns by itself."""
    status.set("connected", "as TestBot#0001")
    SEEN.setdefault("polite", []).append(("connected", service.queue.accepting))
    await stopping.wait()
    SEEN["polite"].append(("stopping", service.queue.accepting))


async def run_plain(service, settings):
    """Knows nothing of status or stopping: runs until cancelled."""
    SEEN.setdefault("plain", []).append("started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        SEEN["plain"].append("cancelled")
        raise


async def run_refused(service, settings, *, status):
    """The platform refuses the login, as Discord does for a revoked token."""
    status.set("connected")
    await asyncio.sleep(0)
    raise UserError("Discord refused the token (401 Unauthorized); reset it in the Developer Portal.")
