"""Token expiry fallback, command sync (function and CLI), and serving over the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import pytest

from engine.errors import UserError
from tests.bot.discord.conftest import image_of, send
from tests.bot.discord.fake_discord import ALICE, APP_ID, CHANNEL_ID, GUILD_ID
from tests.bot.discord.test_stylize import last_edit
from tests.engine.conftest import png_bytes


async def channel_post(fake):
    return await fake.wait_call("POST", f"/channels/{CHANNEL_ID}/messages")


async def test_a_job_outliving_its_token_is_delivered_in_the_channel(bot, fake):
    # The command came 14.5 minutes ago: less than the adapter's one-minute margin is left.
    payload = send(bot, fake.slash("stylize", {"content": fake.attachment(png_bytes(), "a.png"),
                                               "method": "toy"}, age=dt.timedelta(minutes=14, seconds=30)))
    post = await channel_post(fake)
    assert post.json["content"] == f"<@{ALICE['id']}> your result is ready."
    mentions = post.json["allowed_mentions"]
    assert mentions["parse"] == [] and [str(u) for u in mentions["users"]] == [ALICE["id"]]
    assert image_of(post.files[0]).size == (32, 24)
    assert post.json["embeds"][0]["title"] == "Stylized with toy" and post.custom_ids()
    edits = [c.content for c in fake.find("PATCH", payload["token"])]
    assert edits == ["⏳ This is taking a while (job `%s`); I'll post the result in this channel and "
                     "mention you." % post.json["embeds"][0]["footer"]["text"].split()[1]]
    assert not fake.find("POST", f"/webhooks/{APP_ID}/{payload['token']}")


async def test_a_long_job_is_told_in_time_and_delivered_in_the_channel(bot, fake, bot_methods):
    bot_methods.GATE.clear()
    # The token's last minute (the adapter's margin) starts 3 s after the command.
    age = dt.timedelta(minutes=14, seconds=-3)
    payload = send(bot, fake.slash("stylize", {"content": fake.attachment(png_bytes(), "a.png"),
                                               "method": "toy", "options": "wait=true"}, age=age))
    queued = await last_edit(fake, payload, "⏳ Queued")
    notice = await last_edit(fake, payload, "⏳ This is taking a while")  # said while the token works
    assert queued and notice.endswith("I'll post the result in this channel and mention you.")
    bot_methods.GATE.set()
    post = await channel_post(fake)
    assert post.json["content"] == f"<@{ALICE['id']}> your result is ready." and post.files
    assert not fake.find("POST", f"/webhooks/{APP_ID}/{payload['token']}")


async def test_a_token_refused_mid_job_falls_back_to_the_channel(bot, fake, bot_methods):
    bot_methods.GATE.clear()
    payload = send(bot, fake.slash("stylize", {"content": fake.attachment(png_bytes(), "a.png"),
                                               "method": "toy", "options": "wait=true"}))
    await last_edit(fake, payload, "⏳")
    fake.expire(payload["token"])  # Discord forgets it early (it may; the adapter must cope)
    bot_methods.GATE.set()
    post = await channel_post(fake)
    assert post.json["content"] == f"<@{ALICE['id']}> your result is ready." and post.files
    refused = [c for c in fake.find("PATCH", payload["token"]) if c.status == 401]
    assert refused and not fake.find("POST", f"/webhooks/{APP_ID}/{payload['token']}")


async def test_failures_after_the_token_expired_reach_the_user_in_the_channel(bot, fake):
    send(bot, fake.slash("stylize", {"content": fake.attachment(png_bytes(), "b.png"), "method": "toy",
                                     "options": "fail=user"}, age=dt.timedelta(minutes=14, seconds=30)))
    message = await channel_post(fake)
    assert message.json["content"] == f"<@{ALICE['id']}> ⚠️ toy says no"


async def test_without_permission_to_post_in_the_channel_the_result_comes_by_dm(bot, fake):
    fake.forbidden_channels.add(str(CHANNEL_ID))
    send(bot, fake.slash("stylize", {"content": fake.attachment(png_bytes(), "a.png"), "method": "toy"},
                         age=dt.timedelta(minutes=14, seconds=30)))
    dm = await fake.wait_call("POST", "/users/@me/channels")
    assert str(dm.json["recipient_id"]) == ALICE["id"]
    post = await fake.wait_call("POST", "/messages", where=lambda c: c.status == 200)
    assert post.path == f"/channels/{dm.response['id']}/messages" and post.files
    assert post.json["content"] == f"<@{ALICE['id']}> your result is ready."


def _command_names(body) -> list[str]:
    return sorted(c["name"] for c in body)


async def test_sync_registers_every_command_in_a_guild_or_globally(fake, bot_settings, bot_methods):
    from bot.discord.app import sync_commands
    from engine.methods import method_names

    names = await sync_commands(bot_settings, guild_id=GUILD_ID)
    put = fake.find("PUT", f"/applications/{APP_ID}/guilds/{GUILD_ID}/commands")[0]
    assert sorted(names) == _command_names(put.json) == sorted(
        ["stylize", "sd", "nada", "train", "delete-style", "preset", "methods", "queue", "stats",
         "settings", "cancel", "Stylize with preset…", "Stylebot info"])
    stylize = next(c for c in put.json if c["name"] == "stylize")
    options = {o["name"]: o for o in stylize["options"]}
    assert options["content"] == {"type": 11, "name": "content", "required": True,
                                  "description": "The image, animation or short video to restyle"}
    assert [c["value"] for c in options["method"]["choices"]] == method_names()
    assert options["preset"]["autocomplete"] is True
    assert options["model"]["autocomplete"] is True  # the user's own /train styles among them
    train = next(c for c in put.json if c["name"] == "train")
    assert [(o["name"], o["type"], o["required"]) for o in train["options"]] == [
        ("style", 11, True), ("name", 3, True)]
    sd = next(c for c in put.json if c["name"] == "sd")
    assert [o["name"] for o in sd["options"]] == ["image", "prompt", "negative", "strength", "guidance",
                                                   "steps", "seed", "options"]
    menu = next(c for c in put.json if c["name"] == "Stylize with preset…")
    assert menu["type"] == 3
    assert next(c for c in put.json if c["name"] == "Stylebot info")["type"] == 3
    stats = next(c for c in put.json if c["name"] == "stats")  # hidden from non-admins by Discord
    assert str(stats["default_member_permissions"]) == "32" and not stats.get("dm_permission", True)
    settings = next(c for c in put.json if c["name"] == "settings")  # the same for /settings
    assert str(settings["default_member_permissions"]) == "32" and not settings.get("dm_permission", True)
    assert sorted(o["name"] for o in settings["options"]) == ["set", "show"]

    await sync_commands(bot_settings)
    assert _command_names(fake.find("PUT", f"/applications/{APP_ID}/commands")[0].json) == sorted(names)


async def test_stylebot_discord_sync_on_the_command_line(fake, bot_settings, bot_methods, monkeypatch, capsys):
    from stylebot import cli

    monkeypatch.setenv("STYLEBOT_HOME", str(bot_settings.home))
    monkeypatch.setenv("STYLEBOT_DISCORD_TOKEN", "test-token")
    code = await asyncio.to_thread(cli.main, ["discord", "sync", "--guild", str(GUILD_ID)])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"registered 13 commands in guild {GUILD_ID}: ")
    assert fake.find("PUT", f"/guilds/{GUILD_ID}/commands")

    monkeypatch.setenv("STYLEBOT_DISCORD_TOKEN", "wrong")
    code = await asyncio.to_thread(cli.main, ["discord", "sync"])
    assert code == 2
    assert "Discord refused the bot token" in capsys.readouterr().err


async def test_a_client_serves_interactions_over_the_gateway_and_reports_health(fake, service):
    from bot.discord.app import StylebotClient

    ready = asyncio.Event()
    client = StylebotClient(service, service.settings, ready=ready)
    assert client.health()["state"] == "created"
    task = asyncio.create_task(client.serve("test-token"))
    try:
        await asyncio.wait_for(ready.wait(), 15)
        health = client.health()
        assert health["state"] == "ready" and health["user"] == "stylebot" and health["platform"] == "discord"
        payload = fake.slash("queue")
        await fake.send_interaction(payload)  # through the gateway, as Discord delivers it
        answer = await fake.wait_call("POST", f"/interactions/{payload['id']}/")
        assert answer.json["data"]["content"] == "You have no jobs queued or running."
        assert client.health()["interactions"] == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert client.health()["state"] == "stopped"


async def test_run_discord_refuses_a_missing_or_wrong_token(fake, service):
    from bot.discord.app import run_discord

    with pytest.raises(UserError, match="Set STYLEBOT_DISCORD_TOKEN"):
        await run_discord(service, service.settings.model_copy(update={"discord_token": None}))
    with pytest.raises(UserError, match="Discord refused the bot token"):
        await run_discord(service, service.settings.model_copy(update={"discord_token": "nope"}))
