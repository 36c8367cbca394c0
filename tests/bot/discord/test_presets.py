"""/preset save|list|show|use|delete, preset autocomplete and the message command, per user."""

from __future__ import annotations

from tests.bot.discord.conftest import image_of, send
from engine.request import Requester
from tests.bot.discord.fake_discord import ALICE, APP_ID, BOB
from tests.bot.discord.test_stylize import ephemeral_refusal, last_edit
from tests.engine.conftest import png_bytes

MENU = "Stylize with preset…"


async def save_night(bot, fake) -> None:
    style = fake.attachment(png_bytes((40, 40), (0, 255, 0)), "green.png")
    payload = send(bot, fake.slash("preset", {"name": "Night", "method": "toystyle", "style": style,
                                              "options": "steps=3 tag=from-preset"}, sub="save"))
    assert await last_edit(fake, payload, "💾") == (
        "💾 Saved preset **Night** (toystyle, steps=3 tag=from-preset, 1 style image(s)).")


async def immediate(fake, payload) -> dict:
    call = await fake.wait_call("POST", f"/interactions/{payload['id']}/")
    return call


async def test_save_list_show_use_and_delete(bot, fake):
    await save_night(bot, fake)
    listing = await immediate(fake, send(bot, fake.slash("preset", {}, sub="list")))
    assert listing.json["data"]["flags"] & 64
    assert listing.json["data"]["content"] == (
        "Your presets:\n**Night**: toystyle, steps=3 tag=from-preset, 1 style image(s), used 0×")

    shown = await immediate(fake, send(bot, fake.slash("preset", {"name": "night"}, sub="show")))
    assert shown.json["data"]["flags"] & 64
    assert shown.json["data"]["embeds"][0]["title"] == "Preset Night"
    [style] = shown.files
    assert image_of(style).getpixel((0, 0)) == (0, 255, 0)

    content = fake.attachment(png_bytes((32, 24), (10, 20, 30)), "photo.png")
    used = send(bot, fake.slash("preset", {"name": "Night", "content": content}, sub="use"))
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{used['token']}")
    embed = follow_up.json["embeds"][0]
    assert embed["title"] == "Stylized with toystyle"
    assert {f["name"]: f["value"] for f in embed["fields"]}["Options"] == "steps=3 tag=from-preset"
    assert image_of(follow_up.files[0]).convert("RGB").getpixel((0, 0)) == (245, 235, 225)

    via_stylize = send(bot, fake.slash("stylize", {"content": content, "preset": "night",
                                                   "options": "tag=override"}))
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{via_stylize['token']}")
    fields = {f["name"]: f["value"] for f in follow_up.json["embeds"][0]["fields"]}
    assert fields["Options"] == "steps=3 tag=override"

    deleted = await immediate(fake, send(bot, fake.slash("preset", {"name": "Night"}, sub="delete")))
    assert deleted.json["data"]["content"] == "🗑️ Deleted preset **Night**."
    listing = await immediate(fake, send(bot, fake.slash("preset", {}, sub="list")))
    assert listing.json["data"]["content"] == "You have no presets yet; save one with /preset save."


async def test_autocomplete_offers_only_your_own_presets(bot, fake):
    await save_night(bot, fake)
    mine = await immediate(fake, send(bot, fake.slash("preset", {"name": "ni"}, sub="use",
                                                      autocomplete="name")))
    assert mine.json == {"type": 8, "data": {"choices": [{"name": "Night (toystyle)", "value": "Night"}]}}
    theirs = await immediate(fake, send(bot, fake.slash("stylize", {"preset": ""}, autocomplete="preset",
                                                        who=BOB)))
    assert theirs.json == {"type": 8, "data": {"choices": []}}


async def test_unknown_and_other_users_presets_read_the_same(bot, fake):
    await save_night(bot, fake)
    content = fake.attachment(png_bytes(), "a.png")
    unknown = send(bot, fake.slash("preset", {"name": "nope", "content": content}, sub="use"))
    assert await last_edit(fake, unknown, "⚠️") == (
        "⚠️ You have no preset named 'nope'. Your presets: Night.")

    bobs_use = send(bot, fake.slash("stylize", {"content": content, "preset": "Night"}, who=BOB))
    assert await last_edit(fake, bobs_use, "⚠️") == (
        "⚠️ You have no preset named 'Night'. You have no presets yet.")
    bobs_show = send(bot, fake.slash("preset", {"name": "Night"}, sub="show", who=BOB))
    assert await ephemeral_refusal(fake, bobs_show) == (
        "⚠️ You have no preset named 'Night'. You have no presets yet.")
    bobs_delete = send(bot, fake.slash("preset", {"name": "Night"}, sub="delete", who=BOB))
    assert "You have no preset named 'Night'" in await ephemeral_refusal(fake, bobs_delete)
    assert [p.name for p in await bot.service.list_presets(Requester("discord", ALICE["id"]))] == ["Night"]


async def test_a_blend_in_the_options_field_weights_the_style_images(bot, fake):
    green = fake.attachment(png_bytes((40, 40), (0, 255, 0)), "green.png")
    red = fake.attachment(png_bytes((40, 40), (255, 0, 0)), "red.png")
    saved = send(bot, fake.slash("preset", {"name": "Mix", "method": "toystyle", "style": green, "style2": red,
                                            "options": "blend=3,1 tag:'two words'"}, sub="save"))
    assert await last_edit(fake, saved, "💾") == (
        "💾 Saved preset **Mix** (toystyle, tag=\"two words\", 2 style image(s)).")
    shown = await immediate(fake, send(bot, fake.slash("preset", {"name": "Mix"}, sub="show")))
    styles = next(f["value"] for f in shown.json["data"]["embeds"][0]["fields"] if f["name"] == "Style images")
    assert styles == "green.png (weight 0.75), red.png (weight 0.25)"
    stray = send(bot, fake.slash("stylize", {"content": green, "method": "toy", "options": "steps=2 adain"}))
    assert await ephemeral_refusal(fake, stray) == (
        "⚠️ Give the method in the command's own 'method' field, not in options.")


async def test_saving_refuses_options_the_method_lacks(bot, fake):
    payload = send(bot, fake.slash("preset", {"name": "x", "method": "toy", "strength": 0.5}, sub="save"))
    assert await ephemeral_refusal(fake, payload) == (
        "⚠️ Method 'toy' has no option 'strength'; its options are: "
        "steps, delay, fail, tag, wait, size, seed.")


async def test_message_command_offers_your_presets_then_runs_the_chosen_one(bot, fake):
    await save_night(bot, fake)
    posted = fake.user_message([fake.attachment(png_bytes((30, 20), (100, 100, 100)), "cat.png")])
    menu = send(bot, fake.message_command(MENU, posted))
    offer = await immediate(fake, menu)
    assert offer.json["type"] == 4 and offer.json["data"]["flags"] & 64
    assert offer.json["data"]["content"] == "Restyle **cat.png** with which of your presets?"
    [select] = offer.json["data"]["components"][0]["components"]
    assert [o["value"] for o in select["options"]] == ["Night"]

    pick = send(bot, fake.component(fake.original(menu), select["custom_id"], values=["Night"]))
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{pick['token']}")
    assert follow_up.json["embeds"][0]["title"] == "Stylized with toystyle"
    assert image_of(follow_up.files[0]).size == (30, 20)

    again = send(bot, fake.component(fake.original(menu), select["custom_id"], values=["Night"]))
    assert "This menu has expired" in await ephemeral_refusal(fake, again)


async def test_message_command_needs_an_image_and_a_preset(bot, fake):
    no_image = send(bot, fake.message_command(MENU, fake.user_message([])))
    assert "That message has no image or clip attached" in await ephemeral_refusal(fake, no_image)
    posted = fake.user_message([fake.attachment(png_bytes(), "cat.png")])
    no_presets = send(bot, fake.message_command(MENU, posted, who=BOB))
    assert await ephemeral_refusal(fake, no_presets) == (
        "⚠️ You have no presets yet; save one with /preset save.")


async def test_a_bug_is_answered_with_a_reference_that_is_logged_and_others_carry_on(bot, fake, caplog):
    from sqlalchemy import update

    from storage.models import PresetStyle

    await save_night(bot, fake)
    async with bot.service.db.write() as session:  # damage the stored style image
        await session.execute(update(PresetStyle).values(image=b"not the image that was saved"))
    shown = await immediate(fake, send(bot, fake.slash("preset", {"name": "Night"}, sub="show")))
    text = shown.json["data"]["content"]
    ref = text.split("(ref ")[1].split(")")[0]
    assert text == f"❌ Something went wrong on our side (ref {ref}); it has been logged."
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records if r.levelname == "ERROR")
    listing = await immediate(fake, send(bot, fake.slash("preset", {}, sub="list")))
    assert listing.json["data"]["content"].startswith("Your presets:\n**Night**")
