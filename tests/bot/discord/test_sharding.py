"""Sharding: AutoShardedClient over the fake gateway, all shards or one process's range.

The fake answers GET /gateway/bot with two shards and plays a gateway per connection
(HELLO, IDENTIFY -> READY for that shard, heartbeat ACKs); an interaction sent over one
shard's connection only must be answered by the bot.
"""

from __future__ import annotations

import asyncio
import contextlib

import discord
import pytest
from pydantic import ValidationError

from stylebot.settings import Settings
from tests.bot.discord.fake_discord import APP_ID
from tests.bot.discord.test_stylize import last_edit
from tests.engine.conftest import png_bytes


@contextlib.asynccontextmanager
async def serving(service, **shards):
    """A client made as `stylebot run` makes it, with these shard settings, served until ready."""
    from bot.discord.app import make_client

    ready = asyncio.Event()
    settings = service.settings.model_copy(update=shards)
    client = make_client(service, settings, ready=ready, identify_wait_s=0.0, guild_ready_timeout=0.1,
                         edit_interval_s=0.05)
    task = asyncio.create_task(client.serve("test-token"))
    try:
        done, _ = await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, timeout=30,
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # it stopped: say why
        assert ready.is_set(), "the client never became ready"
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_auto_sharding_connects_every_recommended_shard_and_serves_shard_1(fake, service):
    fake.gateway_shards = 2  # Discord recommends two shards
    async with serving(service, discord_shard_count="auto") as client:
        assert isinstance(client, discord.AutoShardedClient)
        assert sorted(d["shard"] for d in fake.identifies) == [[0, 2], [1, 2]]
        assert fake.find("GET", "/gateway/bot")  # the count came from Discord
        health = client.health()
        assert health["state"] == "ready" and (health["shard_count"], health["shards"]) == (2, [0, 1])

        content = fake.attachment(png_bytes((20, 10)), "a.png")
        payload = fake.slash("stylize", {"content": content, "method": "toy"})
        await fake.send_interaction(payload, shard=1)  # over shard 1's connection only
        result = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
        assert result.json["embeds"][0]["title"] == "Stylized with toy" and result.files
        assert await last_edit(fake, payload, "✅")
        assert client.health()["interactions"] == 1
        await asyncio.wait_for(client.flow.idle(), 10)


async def test_a_process_connects_only_its_own_shard_range(fake, service):
    """One process per range: shard 1 of 2 here; the other process would run shard 0."""
    async with serving(service, discord_shard_count=2, discord_shard_ids=[1]) as client:
        assert [d["shard"] for d in fake.identifies] == [[1, 2]]
        assert client.health()["shards"] == [1]
        payload = fake.slash("queue")
        await fake.send_interaction(payload, shard=1)
        answer = await fake.wait_call("POST", f"/interactions/{payload['id']}/")
        assert answer.json["data"]["content"] == "You have no jobs queued or running."


async def test_without_shard_settings_the_bot_keeps_one_unsharded_connection(fake, service):
    async with serving(service) as client:
        assert not isinstance(client, discord.AutoShardedClient)
        assert [("shard" in d) for d in fake.identifies] == [False]
        assert "shards" not in client.health()


def test_shard_settings_read_as_operators_write_them(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEBOT_DISCORD_SHARD_COUNT", "16")
    monkeypatch.setenv("STYLEBOT_DISCORD_SHARD_IDS", "0-3, 8")
    settings = Settings(home=tmp_path)
    assert (settings.discord_shard_count, settings.discord_shard_ids) == (16, [0, 1, 2, 3, 8])
    monkeypatch.setenv("STYLEBOT_DISCORD_SHARD_COUNT", "AUTO")
    monkeypatch.delenv("STYLEBOT_DISCORD_SHARD_IDS")
    assert Settings(home=tmp_path).discord_shard_count == "auto"
    for count, ids, wrong in (("0", "", "at least 1 shard"), ("many", "", "not a number of shards"),
                              ("4", "3-1", "'3-1' is not a shard id or range"),
                              ("4", "0;1", "'0;1' is not a shard id or range")):
        monkeypatch.setenv("STYLEBOT_DISCORD_SHARD_COUNT", count)
        monkeypatch.setenv("STYLEBOT_DISCORD_SHARD_IDS", ids)
        with pytest.raises(ValidationError, match=wrong):
            Settings(home=tmp_path)


@pytest.mark.parametrize("count, ids, problem", [
    (None, [0], "STYLEBOT_DISCORD_SHARD_IDS needs STYLEBOT_DISCORD_SHARD_COUNT as a number"),
    ("auto", [0], "STYLEBOT_DISCORD_SHARD_IDS needs STYLEBOT_DISCORD_SHARD_COUNT as a number"),
    (2, [1, 2], "distinct shards from 0 to 1 (STYLEBOT_DISCORD_SHARD_COUNT is 2)"),
    (4, [1, 1], "distinct shards from 0 to 3"),
    (4, [0, 3], None), ("auto", None, None), (None, None, None),
])
def test_shard_ids_must_fit_the_shard_count(tmp_path, count, ids, problem):
    from bot.discord import FRONTEND
    from tests.stylebot.test_process import DISCORD_TOKEN

    settings = Settings(home=tmp_path, discord_token=DISCORD_TOKEN, discord_shard_count=count,
                        discord_shard_ids=ids)
    problems = FRONTEND.problems(settings)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]
