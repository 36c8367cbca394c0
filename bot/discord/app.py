"""The Discord adapter: slash commands in, StyleService jobs out, results back as messages.

``run_discord`` is what ``stylebot run`` starts when ``STYLEBOT_DISCORD_TOKEN`` is set;
``sync`` registers the commands (``stylebot discord sync [--guild ID]``); a client's
``health`` says how its connection is doing. The bot needs no privileged intents: slash commands and the
message command carry their attachments with them. ``make_client`` picks one gateway
connection or, with ``STYLEBOT_DISCORD_SHARD_COUNT``, discord.py's ``AutoShardedClient``
(docs/discord.md, "Sharding").
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import discord

from engine.errors import UserError

from .commands import StylebotTree
from .flow import InteractionFlow
from .ui import PresetPicker, ResultButton

if TYPE_CHECKING:
    from stylebot.settings import Settings
    from stylebot.service import StyleService

log = logging.getLogger(__name__)

EDIT_INTERVAL_S = 2.0  # progress edits at most this often
TOKEN_MARGIN_S = 60.0  # switch to channel messages this long before a token's 15 minutes end
IDENTIFY_WAIT_S = 5.0  # between two shards' IDENTIFYs: Discord allows one per 5 s (max_concurrency 1)
# our connection states -> the words `stylebot run`'s /healthz uses
STATUS_WORDS = {"connecting": "starting", "ready": "connected", "disconnected": "disconnected"}
TOKEN_HINT = ("Set STYLEBOT_DISCORD_TOKEN to the bot token from the Discord Developer Portal "
              "(your application → Bot → Reset Token).")
TOKEN_REFUSED = "Discord refused the bot token in STYLEBOT_DISCORD_TOKEN. " + TOKEN_HINT


class StylebotClient(discord.Client):
    """A discord.py client that knows Stylebot's commands and buttons.

    ``service`` may be None when the client only syncs commands. The keyword arguments
    after it exist so an operator (or a test) can tune timing and limits.
    """

    def __init__(self, service: "StyleService | None", settings: "Settings", *,
                 ready: asyncio.Event | None = None, sync_guild: int | None = None,
                 edit_interval_s: float = EDIT_INTERVAL_S,
                 token_margin_s: float = TOKEN_MARGIN_S, status: Any = None, **options: Any) -> None:
        super().__init__(intents=discord.Intents(guilds=True), **options)
        self.settings = settings
        self.service = service
        self.flow = InteractionFlow(service, settings,  # type: ignore[arg-type]
                                    edit_interval_s=edit_interval_s, token_margin_s=token_margin_s)
        self.tree = StylebotTree(self)
        self.add_dynamic_items(ResultButton, PresetPicker)
        self._ready_event = ready
        self._sync_guild = sync_guild
        self._status = status
        self.connection_state = "created"
        self.interaction_count = 0
        self.started_at: float | None = None

    def set_state(self, state: str, detail: str = "") -> None:
        """Our own state, mirrored to ``stylebot run``'s adapter status when there is one."""
        self.connection_state = state
        if self._status is not None and state in STATUS_WORDS:
            self._status.set(STATUS_WORDS[state], detail)

    async def setup_hook(self) -> None:
        self.set_state("connecting", "logging in")
        if self._sync_guild:
            guild = discord.Object(id=self._sync_guild)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s", len(synced), self._sync_guild)

    async def on_ready(self) -> None:
        self.set_state("ready", f"as {self.user}")
        if self.started_at is None:
            self.started_at = time.monotonic()
        log.info("discord: logged in as %s (%s) in %d guild(s)", self.user, getattr(self.user, "id", "?"),
                 len(self.guilds))
        if self._ready_event is not None:
            self._ready_event.set()

    async def on_disconnect(self) -> None:
        if self.connection_state != "stopped":
            self.set_state("disconnected", "reconnecting")

    async def on_resumed(self) -> None:
        self.set_state("ready", f"as {self.user}")

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.interaction_count += 1

    def health(self) -> dict[str, Any]:
        """The connection's state (created, connecting, ready, disconnected, stopped) and counters."""
        latency = self.latency
        return {
            "platform": "discord",
            "state": self.connection_state,
            "user": str(self.user) if self.user else None,
            "guilds": len(self.guilds),
            "latency_ms": round(latency * 1000) if math.isfinite(latency) else None,
            "interactions": self.interaction_count,
            "jobs_following": self.flow.following,
            "failures": self.flow.failures,
            **self._shard_health(),
        }

    def _shard_health(self) -> dict[str, Any]:
        return {}

    async def serve(self, token: str, *, stopping: asyncio.Event | None = None) -> None:
        """Log in and serve until cancelled, or until ``stopping`` is set and every job's messages are sent."""
        try:
            async with self:
                connection = asyncio.create_task(self.start(token), name="discord-gateway")
                waits: set[asyncio.Future] = {connection}
                if stopping is not None:
                    waits.add(asyncio.ensure_future(stopping.wait()))
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    if connection.done():
                        connection.result()  # login refused, gateway gave up...
                    else:
                        log.info("discord: stopping; delivering %d job message(s) first", self.flow.following)
                        await self.flow.idle()
                finally:
                    for task in waits:
                        task.cancel()
                    await asyncio.gather(*waits, return_exceptions=True)
        except discord.LoginFailure:
            raise UserError(TOKEN_REFUSED) from None
        finally:
            self.set_state("stopped")


class ShardedStylebotClient(StylebotClient, discord.AutoShardedClient):
    """The same bot over several gateway connections (shards), all of them or ``shard_ids``.

    discord.py's ``AutoShardedClient`` does the sharding; ``identify_wait_s`` spaces the
    shards' IDENTIFYs as Discord requires (its default, 5 s; tests shorten it).
    """

    def __init__(self, service: "StyleService | None", settings: "Settings", *,
                 identify_wait_s: float = IDENTIFY_WAIT_S, **options: Any) -> None:
        super().__init__(service, settings, **options)
        self.identify_wait_s = identify_wait_s

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self.identify_wait_s)

    async def on_shard_ready(self, shard_id: int) -> None:
        log.info("discord: shard %d of %s ready", shard_id, self.shard_count)

    def _shard_health(self) -> dict[str, Any]:
        return {"shard_count": self.shard_count, "shards": sorted(self.shards)}


def make_client(service: "StyleService | None", settings: "Settings", **options: Any) -> StylebotClient:
    """One gateway connection, or shards when ``discord_shard_count`` is set: all of them
    ('auto': as many as Discord recommends), or only ``discord_shard_ids`` in this process."""
    count = settings.discord_shard_count
    if count is None:
        return StylebotClient(service, settings, **options)
    return ShardedStylebotClient(service, settings, shard_count=None if count == "auto" else count,
                                 shard_ids=settings.discord_shard_ids, **options)


async def run_discord(service: "StyleService", settings: "Settings", *,
                      ready: asyncio.Event | None = None, status: Any = None,
                      stopping: asyncio.Event | None = None) -> None:
    """Connect and serve until cancelled (or until ``stopping`` is set and jobs are delivered).

    ``ready`` is set once the gateway says READY. ``stylebot run`` may also pass ``status``
    (anything with ``set(state, detail)``, reported on /healthz) and ``stopping``, set once
    the queue has stopped and told waiting users; then the messages about those jobs are
    sent before the connection closes.
    """
    if not settings.discord_token:
        raise UserError(TOKEN_HINT)
    client = make_client(service, settings, ready=ready, sync_guild=settings.discord_guild_id,
                         status=status)
    await client.serve(settings.discord_token, stopping=stopping)


async def sync_commands(settings: "Settings", guild_id: int | None = None) -> list[str]:
    """Register the commands with Discord, globally or in one guild (instant, for testing)."""
    if not settings.discord_token:
        raise UserError(TOKEN_HINT)
    client = StylebotClient(None, settings)
    async with client:
        try:
            await client.login(settings.discord_token)
        except discord.LoginFailure:
            raise UserError(TOKEN_REFUSED) from None
        if guild_id:
            guild = discord.Object(id=guild_id)
            client.tree.copy_global_to(guild=guild)
            try:
                synced = await client.tree.sync(guild=guild)
            except discord.Forbidden:
                raise UserError(f"Discord refused commands for guild {guild_id}: invite the bot there "
                                "with the applications.commands scope first.") from None
        else:
            synced = await client.tree.sync()
    return [command.name for command in synced]


def sync(settings: "Settings", guild_id: int | None = None) -> list[str]:
    """``sync_commands`` for the CLI."""
    return asyncio.run(sync_commands(settings, guild_id))
