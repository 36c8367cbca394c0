"""Apps → Stylebot info: the settings inside a result, read back from the message (issue 16)."""

from __future__ import annotations

import mimetypes

from engine.resultinfo import embedded_text
from tests.bot.discord.conftest import send
from tests.bot.discord.fake_discord import ALICE, APP_ID, BOB
from tests.bot.discord.test_presets import save_night
from tests.bot.discord.test_stylize import ephemeral_refusal, last_edit
from tests.engine.conftest import png_bytes

INFO = "Stylebot info"


def as_discord_holds_it(fake, message: dict) -> dict:
    """The posted message with its attachments typed by name, as Discord types uploads."""
    for attachment in message["attachments"]:
        attachment["content_type"] = mimetypes.guess_type(attachment["filename"])[0]
    return message


async def posted_result(fake, payload) -> dict:
    call = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    message_id = fake.messages[next(iter(m for m in fake.messages
                                         if fake.messages[m]["attachments"]
                                         and fake.messages[m]["embeds"] == call.json["embeds"]))]["id"]
    return as_discord_holds_it(fake, fake.messages[message_id])


async def test_info_reads_the_settings_back_and_offers_the_command(bot, fake):
    content = fake.attachment(png_bytes((32, 24)), "photo.png")
    asked = send(bot, fake.slash("stylize", {"content": content, "method": "toy", "seed": 42,
                                             "options": "steps=3 tag=blue"}))
    result = await posted_result(fake, asked)

    info = send(bot, fake.message_command(INFO, result, who=BOB))  # anyone may read a posted result
    text = await last_edit(fake, info, "**Stylebot settings**")
    lines = text.splitlines()
    assert lines[1].startswith("Made with Stylebot ") and lines[1].endswith(", method toy")
    assert lines[2:] == ["Options: steps=3 tag=blue", "Seed: 42", "Size: 32x24",
                         "Use these settings on a new photo:", "```",
                         "/stylize method:toy steps:3 tag:blue seed:42", "```"]
    deferral = await fake.wait_call("POST", f"/interactions/{info['id']}/")
    assert deferral.json["data"]["flags"] & 64  # private


async def test_info_metadata_has_no_user_id_or_private_preset(bot, fake):
    await save_night(bot, fake)
    content = fake.attachment(png_bytes((30, 20)), "photo.png")
    asked = send(bot, fake.slash("preset", {"name": "Night", "content": content}, sub="use"))
    result = await posted_result(fake, asked)
    data, _ = fake._cdn[result["attachments"][0]["url"].removeprefix(fake.root)]
    text = embedded_text(data)
    assert '"method":"toystyle"' in text and "from-preset" in text  # the options shown are there
    for private in (ALICE["id"], "alice", "Night", "green.png", "/"):
        assert private not in text


async def test_info_on_an_image_without_settings_or_no_image_is_one_line(bot, fake):
    plain = fake.user_message([fake.attachment(png_bytes(), "cat.png")])
    asked = send(bot, fake.message_command(INFO, plain))
    assert await last_edit(fake, asked, "⚠️") == (
        "⚠️ That image carries no Stylebot settings: only results Stylebot posted "
        "(as PNG, or JPEG when shrunk to fit) do.")
    nothing = send(bot, fake.message_command(INFO, fake.user_message([])))
    assert await ephemeral_refusal(fake, nothing) == (
        "⚠️ That message has no image attached; use Stylebot info on a message with a Stylebot result.")
