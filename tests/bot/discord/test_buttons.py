"""The buttons under a result: Re-roll, Stronger/Weaker, Save as preset, Info, Delete; and restarts."""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image, ImageOps

from engine.request import Requester
from storage import results as storage_results
from tests.bot.discord.conftest import image_of, send
from tests.bot.discord.fake_discord import ALICE, APP_ID, BOB, CHANNEL_ID
from tests.bot.discord.test_presets import save_night
from tests.bot.discord.test_stylize import ephemeral_refusal
from tests.engine.conftest import png_bytes

GREY = (100, 150, 200)


async def first_result(bot, fake, **options):
    content = fake.attachment(png_bytes((24, 16), GREY), "grey.png")
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toyfade", **options}))
    call = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    return call, fake.messages[call.response["id"]]


def fields(call) -> dict[str, str]:
    return {f["name"]: f["value"] for f in call.json["embeds"][0]["fields"]}


def button(call, action: str) -> str:
    return next(c for c in call.custom_ids() if c.startswith(f"stylebot:{action}:"))


async def click(bot, fake, message, custom_id, who=ALICE):
    payload = send(bot, fake.component(message, custom_id, who=who))
    return payload, await fake.wait_call("POST", f"/interactions/{payload['id']}/")


async def test_re_roll_runs_the_same_request_with_a_new_seed(bot, fake):
    first, message = await first_result(bot, fake, seed=5, strength=0.5)
    assert [c.split(":")[1] for c in first.custom_ids()] == ["reroll", "stronger", "weaker", "save", "info",
                                                          "delete"]
    payload, deferral = await click(bot, fake, message, button(first, "reroll"), who=BOB)
    assert deferral.json == {"type": 5, "data": {"flags": 64}}
    again = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    assert fields(again)["Options"] == "strength=0.5"
    assert fields(again)["Seed"] != "5"
    assert again.json["embeds"][0]["footer"]["text"].endswith("for Bob")  # the clicker's job now
    assert image_of(again.files[0]).getpixel((3, 3)) == image_of(first.files[0]).getpixel((3, 3))


async def test_stronger_and_weaker_step_the_strength_and_keep_the_seed(bot, fake):
    first, message = await first_result(bot, fake, seed=9)  # strength defaults to 1, its maximum
    assert [c.split(":")[1] for c in first.custom_ids()] == ["reroll", "weaker", "save", "info", "delete"]
    payload, _ = await click(bot, fake, message, button(first, "weaker"))
    weaker = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    assert fields(weaker)["Options"] == "strength=0.8" and fields(weaker)["Seed"] == "9"
    expected = Image.blend(Image.new("RGB", (1, 1), GREY), ImageOps.invert(Image.new("RGB", (1, 1), GREY)), 0.8)
    assert image_of(weaker.files[0]).convert("RGB").getpixel((3, 3)) == expected.getpixel((0, 0))
    assert image_of(weaker.files[0]).getpixel((0, 0)) == image_of(first.files[0]).getpixel((0, 0))


async def test_save_as_preset_asks_a_name_and_saves_for_the_clicker(bot, fake):
    first, message = await first_result(bot, fake, seed=3, strength=0.6)
    payload, modal = await click(bot, fake, message, button(first, "save"), who=BOB)
    assert modal.json["type"] == 9
    form = modal.json["data"]
    job_id = first.json["embeds"][0]["footer"]["text"].split()[1]
    assert form["custom_id"] == f"stylebot:savepreset:{job_id}"
    text_input = form["components"][0]["components"][0]
    submitted = send(bot, fake.modal_submit(form["custom_id"], {text_input["custom_id"]: "Faded"}, who=BOB))
    answer = await fake.wait_call("POST", f"/interactions/{submitted['id']}/")
    assert answer.json["data"]["flags"] & 64
    assert answer.json["data"]["content"].startswith("💾 Saved preset **Faded** (toyfade, strength=0.6")
    [preset] = await bot.service.list_presets(Requester("discord", BOB["id"]))
    assert (preset.name, preset.method, preset.options) == ("Faded", "toyfade", {"strength": 0.6})
    assert await bot.service.list_presets(Requester("discord", ALICE["id"])) == []


async def test_info_tells_the_clicker_alone_how_the_result_was_made(bot, fake):
    first, message = await first_result(bot, fake, seed=3, strength=0.6)
    job_id = first.json["embeds"][0]["footer"]["text"].split()[1]
    _, answer = await click(bot, fake, message, button(first, "info"), who=BOB)
    assert answer.json["type"] == 4 and answer.json["data"]["flags"] & 64  # ephemeral, no deferral
    text = answer.json["data"]["content"]
    assert text.startswith("**How this result was made**\nMade with Stylebot ")
    assert "method toyfade\nOptions: strength=0.6\nSeed: 3\nSize: 24x16\nTime: " in text
    assert f"Job: {job_id}" in text
    assert text.endswith("```\n/stylize method:toyfade strength:0.6 seed:3\n```")
    assert len(fake.find("POST", f"/webhooks/{APP_ID}/")) == 1  # nothing posted in the channel


async def test_only_the_requester_may_delete_a_result(bot, fake):
    first, message = await first_result(bot, fake)
    _, answer = await click(bot, fake, message, button(first, "delete"), who=BOB)
    assert answer.json["data"]["content"] == "⚠️ Only the person who asked for this result can delete it."
    assert message["id"] in fake.messages
    payload, answer = await click(bot, fake, message, button(first, "delete"))
    assert answer.json == {"type": 6}
    await fake.wait_call("DELETE", f"/channels/{CHANNEL_ID}/messages/{message['id']}")
    assert message["id"] not in fake.messages


async def test_after_a_reconnect_buttons_still_answer(bot, fake, service):
    """Buttons are dynamic items and results live in the service, not in the client."""
    from bot.discord.app import StylebotClient

    first, message = await first_result(bot, fake)
    await bot.close()
    restarted = StylebotClient(service, service.settings)
    await restarted.login("test-token")
    try:
        payload = send(restarted, fake.component(message, button(first, "reroll")))
        again = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
        assert fields(again)["Options"] == fields(first)["Options"]
        payload = send(restarted, fake.component(message, button(first, "delete")))
        await fake.wait_call("DELETE", f"/channels/{CHANNEL_ID}/messages/{message['id']}")
    finally:
        await restarted.close()


async def restart(service):
    """The process ends and a new one starts on the same database: a new service and queue."""
    from stylebot.service import StyleService

    await service.queue.drain_observers()  # the old process had kept its results
    await service.close(grace_s=1)
    return await StyleService.open(service.settings)


async def test_after_a_restart_old_results_buttons_still_work(bot, fake, service):
    """The new process's queue never saw the job: its buttons answer from the database."""
    from bot.discord.app import StylebotClient

    first, message = await first_result(bot, fake, seed=9, strength=0.6)
    await bot.close()
    fresh = await restart(service)
    restarted = StylebotClient(fresh, fresh.settings, edit_interval_s=0.05)
    await restarted.login("test-token")
    try:
        payload = send(restarted, fake.component(message, button(first, "stronger"), who=BOB))
        again = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
        assert fields(again)["Options"] == "strength=0.8" and fields(again)["Seed"] == "9"
        assert again.json["embeds"][0]["footer"]["text"].endswith("for Bob")
        assert image_of(again.files[0]).getpixel((0, 0)) == image_of(first.files[0]).getpixel((0, 0))

        payload, modal = await click(restarted, fake, message, button(first, "save"))
        assert modal.json["type"] == 9
        form = modal.json["data"]
        text_input = form["components"][0]["components"][0]
        submitted = send(restarted, fake.modal_submit(form["custom_id"], {text_input["custom_id"]: "Kept"}))
        answer = await fake.wait_call("POST", f"/interactions/{submitted['id']}/")
        assert answer.json["data"]["content"].startswith("💾 Saved preset **Kept** (toyfade, strength=0.6")

        _, info = await click(restarted, fake, message, button(first, "info"), who=BOB)
        assert info.json["data"]["flags"] & 64
        assert info.json["data"]["content"].endswith("/stylize method:toyfade strength:0.6 seed:9\n```")

        _, answer = await click(restarted, fake, message, button(first, "delete"), who=BOB)
        assert answer.json["data"]["content"] == "⚠️ Only the person who asked for this result can delete it."
        send(restarted, fake.component(message, button(first, "delete")))
        await fake.wait_call("DELETE", f"/channels/{CHANNEL_ID}/messages/{message['id']}")
        await asyncio.wait_for(restarted.flow.idle(), 10)
    finally:
        await restarted.close()
        await fresh.close(grace_s=1)


async def test_after_a_restart_a_purged_results_buttons_say_so(bot, fake, service):
    from bot.discord.app import StylebotClient

    first, message = await first_result(bot, fake)
    await bot.close()
    fresh = await restart(service)
    await storage_results.purge_results(fresh.db, keep_days=1e-9)  # retention ran out
    restarted = StylebotClient(fresh, fresh.settings)
    await restarted.login("test-token")
    try:
        payload = send(restarted, fake.component(message, button(first, "reroll")))
        assert await ephemeral_refusal(fake, payload) == (
            "⚠️ This result is too old for its buttons; run the command again.")
    finally:
        await restarted.close()
        await fresh.close(grace_s=0)


REFUSED = ("⚠️ Only the person who asked for this result can {}: it was made with their private "
           "preset. Use your own style image or preset instead.")


@pytest.mark.security
async def test_others_clicks_on_a_result_made_with_a_private_preset_are_refused(bot, fake):
    await save_night(bot, fake)  # Alice's preset, with her green style image
    content = fake.attachment(png_bytes((24, 16), GREY), "grey.png")
    used = send(bot, fake.slash("preset", {"name": "Night", "content": content}, sub="use"))
    first = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{used['token']}")
    message = fake.messages[first.response["id"]]
    assert [c.split(":")[1] for c in first.custom_ids()] == ["reroll", "save", "info", "delete"]

    for action, words in (("reroll", "re-roll it"), ("save", "save it as a preset"),
                          ("info", "see its settings")):
        payload = send(bot, fake.component(message, button(first, action), who=BOB))
        assert await ephemeral_refusal(fake, payload) == REFUSED.format(words)  # no form, no job
    assert len(fake.find("POST", f"/webhooks/{APP_ID}/")) == 1  # Alice's result, nothing more
    assert await bot.service.list_presets(Requester("discord", BOB["id"])) == []

    payload, deferral = await click(bot, fake, message, button(first, "reroll"))  # Alice: all of it
    assert deferral.json == {"type": 5, "data": {"flags": 64}}
    again = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    assert again.json["embeds"][0]["footer"]["text"].endswith("for Alice")
    payload, modal = await click(bot, fake, message, button(first, "save"))
    assert modal.json["type"] == 9
    _, info = await click(bot, fake, message, button(first, "info"))
    assert "Preset: Night (yours)" in info.json["data"]["content"]
