"""/settings: Manage Server members set server and channel defaults and limits; they bind."""

from __future__ import annotations

from tests.bot.discord.conftest import send
from tests.bot.discord.fake_discord import APP_ID, BOB, CHANNEL_ID
from tests.bot.discord.test_queue import answer_of
from tests.bot.discord.test_stylize import ephemeral_refusal, last_edit
from tests.engine.conftest import png_bytes

MANAGE_GUILD = 0x20


def as_admin(payload: dict) -> dict:
    member = payload["member"]
    member["permissions"] = str(int(member["permissions"]) | MANAGE_GUILD)
    return payload


def in_channel(payload: dict, channel_id: int) -> dict:
    payload["channel_id"] = payload["channel"]["id"] = str(channel_id)
    return payload


async def set_settings(bot, fake, channel_id: int = CHANNEL_ID, **options) -> str:
    return await answer_of(fake, send(bot, in_channel(as_admin(
        fake.slash("settings", options, sub="set")), channel_id)))


async def test_settings_non_admin_cannot_change_them_in_one_line(bot, fake):
    refused = send(bot, fake.slash("settings", {"where": "server", "method": "toy"}, sub="set"))
    assert await ephemeral_refusal(fake, refused) == (
        "⚠️ Only members with the Manage Server permission can change /settings.")
    shown = await answer_of(fake, send(bot, fake.slash("settings", sub="show")))
    assert shown.splitlines()[0] == "This server: nothing set"
    command = bot.tree.get_command("settings")
    assert command.default_permissions.manage_guild and command.guild_only


async def test_settings_show_lists_server_and_channel_settings(bot, fake):
    saved = await set_settings(bot, fake, where="server", method="toy", size=512, jobs_per_user=2,
                               sd=False, results="ephemeral")
    assert saved.startswith("⚙️ Saved.\nThis server: method=toy size=512 jobs_per_user=2 sd=no "
                            "results=ephemeral\n")
    await set_settings(bot, fake, where="channel", methods="toy,toyfade", clear="results")
    shown = await answer_of(fake, send(bot, fake.slash("settings", sub="show")))
    assert shown == ("This server: method=toy size=512 jobs_per_user=2 sd=no results=ephemeral\n"
                     "This channel (wins over the server's): methods=toy,toyfade\n"
                     "In force here: method toy, size 512, methods toy, toyfade, no sd, "
                     "jobs per user 2, results ephemeral.")
    elsewhere = await answer_of(fake, send(bot, in_channel(fake.slash("settings", sub="show"), 42)))
    assert elsewhere.splitlines()[1] == "This channel (wins over the server's): nothing set"


async def test_settings_default_method_applies_and_ephemeral_results_stay_private(bot, fake):
    await set_settings(bot, fake, where="server", method="toyfade", results="ephemeral")
    await set_settings(bot, fake, where="channel", results="public")
    content = fake.attachment(png_bytes(), "a.png")
    private = send(bot, in_channel(fake.slash("stylize", {"content": content}), 42))
    result = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{private['token']}")
    assert result.json["flags"] & 64  # only the asker sees it
    assert "toyfade" in str(result.json["embeds"][0])
    public = send(bot, fake.slash("stylize", {"content": content}))  # the channel says public
    result = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{public['token']}")
    assert not result.json.get("flags", 0) & 64


async def test_settings_allowed_methods_and_sd_refusal_bind(bot, fake):
    await set_settings(bot, fake, where="server", sd=False)
    await set_settings(bot, fake, where="channel", methods="toy,sd")
    content = fake.attachment(png_bytes(), "a.png")
    sd = send(bot, fake.slash("sd", {"image": content, "prompt": "a fox"}))
    assert await ephemeral_refusal(fake, sd) == "⚠️ The admins turned sd off here; use another method."
    fade = send(bot, fake.slash("stylize", {"content": content, "method": "toyfade"}))
    assert await ephemeral_refusal(fake, fade) == "⚠️ Method 'toyfade' is not allowed here; allowed: toy, sd."
    other = send(bot, in_channel(fake.slash("stylize", {"content": content, "method": "toyfade"}), 42))
    await fake.wait_call("POST", f"/webhooks/{APP_ID}/{other['token']}")  # other channels: allowed


async def test_settings_per_user_job_limit_binds(bot, fake, bot_methods):
    bot_methods.GATE.clear()
    await set_settings(bot, fake, where="server", jobs_per_user=1)
    content = fake.attachment(png_bytes(), "a.png")
    send(bot, fake.slash("stylize", {"content": content, "method": "toy", "options": "wait=true"}))
    await fake.wait_call("PATCH", "/messages/@original", where=lambda c: c.content.startswith("⏳"))
    second = send(bot, in_channel(fake.slash("stylize", {"content": content, "method": "toy"}), 42))
    assert (await last_edit(fake, second, "⚠️")).startswith(
        "⚠️ You already have 1 job queued or running here (this server's limit is 1)")
    bobs = send(bot, fake.slash("stylize", {"content": content, "method": "toy"}, who=BOB))
    assert (await last_edit(fake, bobs, "⏳")).startswith("⏳")
    bot_methods.GATE.set()
