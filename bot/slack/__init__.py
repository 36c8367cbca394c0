"""The Slack front end: slash commands, a shortcut and mentions in, Stylebot jobs out.

``app`` runs the Bolt app (Socket Mode or HTTP), ``commands`` holds the listeners,
``inputs`` finds and fetches shared images, ``flow`` follows a job to its result,
``render`` writes the texts and Block Kit, ``ui`` holds the modals and buttons.
``FRONTEND`` is what `stylebot run` sees; it imports Bolt only when used.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from stylebot.frontends import Frontend, Status

if TYPE_CHECKING:
    from stylebot.service import StyleService
    from stylebot.settings import Settings


def _configured(settings: "Settings") -> bool:
    return bool(settings.slack_bot_token or settings.slack_app_token)


def _problems(s: "Settings") -> list[str]:
    out = []
    bot, app, secret = s.slack_bot_token, s.slack_app_token, s.slack_signing_secret
    if bot is not None and not re.fullmatch(r"xoxb-[A-Za-z0-9-]{10,}", bot.strip()):
        hint = " (that is a user token; use the Bot User OAuth Token)" if bot.startswith("xoxp-") else ""
        out.append(f"STYLEBOT_SLACK_BOT_TOKEN must start with 'xoxb-'{hint}.")
    if app is not None and not re.fullmatch(r"xapp-[A-Za-z0-9-]{10,}", app.strip()):
        out.append("STYLEBOT_SLACK_APP_TOKEN must start with 'xapp-' (an app-level token with "
                   "connections:write).")
    if app and not bot:
        out.append("STYLEBOT_SLACK_APP_TOKEN is set but STYLEBOT_SLACK_BOT_TOKEN (xoxb-...) is not; "
                   "Slack needs both.")
    if bot and s.slack_mode == "socket" and not app:
        out.append("Slack in socket mode needs STYLEBOT_SLACK_APP_TOKEN (xapp-...); or set "
                   "STYLEBOT_SLACK_MODE=http with STYLEBOT_SLACK_SIGNING_SECRET.")
    if bot and s.slack_mode == "http":
        if not secret:
            out.append("Slack in http mode needs STYLEBOT_SLACK_SIGNING_SECRET.")
        elif not re.fullmatch(r"[0-9a-fA-F]{32}", secret.strip()):
            out.append("STYLEBOT_SLACK_SIGNING_SECRET should be 32 hexadecimal characters "
                       "(Basic Information > Signing Secret).")
    return out


async def _run(service: "StyleService", settings: "Settings", status: Status,
               stopping: asyncio.Event) -> None:
    """Serve until cancelled, or until ``stopping``: then the jobs in flight send their last words."""
    from .app import run_slack

    serving = asyncio.create_task(run_slack(service, settings, status=status))
    stop = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({serving, stop}, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()  # a refused token, a port in use...
    finally:
        stop.cancel()
        serving.cancel()  # run_slack closes its flow, letting messages in flight go out
        await asyncio.gather(serving, stop, return_exceptions=True)


FRONTEND = Frontend(name="slack", configured=_configured, problems=_problems, run=_run)
