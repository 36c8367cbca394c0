"""The Discord front end: slash commands and buttons in, Stylebot jobs out.

``app`` connects and runs, ``commands`` declares the slash and message commands,
``inputs`` turns attachments into uploads, ``flow`` follows a job to its result,
``reply`` edits the interaction's message, ``render`` writes the texts and embeds,
``ui`` holds the buttons, menus and forms under them. ``FRONTEND`` is what `stylebot run`
and the CLI see; it imports discord.py only when used.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from stylebot.frontends import Frontend, Status

if TYPE_CHECKING:
    import argparse

    from stylebot.service import StyleService
    from stylebot.settings import Settings

TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}")


def _configured(settings: "Settings") -> bool:
    return bool(settings.discord_token)


def _problems(settings: "Settings") -> list[str]:
    token = settings.discord_token
    if token is None:
        return []
    shards = _shard_problems(settings.discord_shard_count, settings.discord_shard_ids)
    if shards:
        return [shards]
    token = token.strip()
    if token.lower().startswith("bot "):
        return ["STYLEBOT_DISCORD_TOKEN should be the bare bot token, without 'Bot ' in front."]
    if not TOKEN_SHAPE.fullmatch(token):
        return ["STYLEBOT_DISCORD_TOKEN does not look like a Discord bot token (three parts "
                "separated by dots); copy it from the Developer Portal's Bot page."]
    return []


def _shard_problems(count: int | str | None, ids: list[int] | None) -> str | None:
    """Why STYLEBOT_DISCORD_SHARD_COUNT and _SHARD_IDS cannot work together; None if they can."""
    if ids is None:
        return None
    if not isinstance(count, int):
        return ("STYLEBOT_DISCORD_SHARD_IDS needs STYLEBOT_DISCORD_SHARD_COUNT as a number (the "
                "bot's shards in all, the same in every process), not " + (count or "unset") + ".")
    if not ids or len(set(ids)) != len(ids) or max(ids) >= count:
        return (f"STYLEBOT_DISCORD_SHARD_IDS must name distinct shards from 0 to {count - 1} "
                f"(STYLEBOT_DISCORD_SHARD_COUNT is {count}).")
    return None


def _warnings(settings: "Settings") -> list[str]:
    if settings.discord_guild_id and not settings.discord_token:
        return ["STYLEBOT_DISCORD_GUILD_ID is set but STYLEBOT_DISCORD_TOKEN is not; Discord stays off."]
    return []


async def _run(service: "StyleService", settings: "Settings", status: Status,
               stopping: asyncio.Event) -> None:
    from .app import run_discord

    await run_discord(service, settings, status=status, stopping=stopping)


def _add_commands(subparsers: "argparse._SubParsersAction") -> None:
    tools = subparsers.add_parser("discord", help="Discord tools: register the slash commands")
    actions = tools.add_subparsers(dest="discord_command", required=True, metavar="ACTION")
    sync = actions.add_parser("sync", help="register the commands globally, or in one guild "
                                           "(instant, for testing)")
    sync.add_argument("--guild", type=int, metavar="ID", help="the test server's id")
    sync.set_defaults(handler=_sync)


def _sync(args: "argparse.Namespace", settings: "Settings") -> int:
    from .app import sync

    names = sync(settings, args.guild)
    where = f"in guild {args.guild}" if args.guild else "globally"
    print(f"registered {len(names)} commands {where}: {', '.join(names)}")
    return 0


FRONTEND = Frontend(name="discord", configured=_configured, problems=_problems,
                    warnings=_warnings, run=_run, add_commands=_add_commands)
