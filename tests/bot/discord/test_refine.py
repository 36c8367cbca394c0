"""/stylize quality:refine on Discord: the draft is posted as a follow-up at once, then that same
follow-up is edited with the refinement's progress and its result; Stop refining (its owner
only) leaves the draft. Stand-ins take hub's and gatys' places (tests/stylebot/refine_toys.py)."""

from __future__ import annotations

import pytest
from tests.bot.discord.conftest import image_of, send
from tests.bot.discord.fake_discord import APP_ID, BOB, CHANNEL_ID
from tests.bot.discord.test_buttons import button, click
from tests.engine.conftest import png_bytes
from tests.stylebot import refine_toys

RED = (200, 30, 30)


@pytest.fixture
def refine_methods(bot_methods, monkeypatch):
    refine_toys.register(monkeypatch)
    yield refine_toys
    refine_toys.unregister()


async def draft_posted(bot, fake, **options):
    content = fake.attachment(png_bytes((64, 48), RED), "red.png")
    style = fake.attachment(png_bytes((20, 20), (0, 0, 200)), "blue.png")
    payload = send(bot, fake.slash("stylize", {"content": content, "style": style,
                                               "quality": "refine", **options}))
    draft = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    return payload, draft, fake.messages[draft.response["id"]]


def edits_of(fake, payload, message_id):
    return fake.find("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/{message_id}")


async def test_refine_posts_the_draft_then_edits_the_same_follow_up_with_the_refinement(
        bot, fake, refine_methods):
    refine_methods.GATE.clear()  # the refinement holds until the draft is seen
    payload, draft, message = await draft_posted(bot, fake, options="iterations=5")
    assert draft.content.startswith("Draft. Refining with gatys")
    assert [c.split(":")[1] for c in draft.custom_ids()] == ["stop", "delete"]
    refine_methods.GATE.set()
    draft_pixel = image_of(draft.files[0]).convert("RGB").getpixel((3, 3))
    assert draft_pixel == tuple(255 - c for c in RED)  # the stand-in draft inverts

    final = await fake.wait_call("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/{message['id']}",
                                 where=lambda c: bool(c.files))
    assert final.json["content"] == ""
    embed = final.json["embeds"][0]
    assert embed["title"] == "Stylized with gatys"
    assert {f["name"]: f["value"] for f in embed["fields"]}["Options"] == "iterations=5"
    assert [c.split(":")[1] for c in final.custom_ids()] == ["reroll", "stronger", "weaker", "save",
                                                              "info", "delete"]
    refined = image_of(final.files[0]).convert("RGB").getpixel((3, 3))
    assert max(abs(a - (b + 128) / 2) for a, b in zip(refined, draft_pixel)) <= 1  # from the draft
    progress = [c.json["content"] for c in edits_of(fake, payload, message["id"]) if not c.files]
    assert progress and all(p.startswith("Draft. Refining with gatys") for p in progress)
    # One message all along: the draft's follow-up now holds the refined image, and nothing else was posted.
    held = fake.messages[message["id"]]
    assert len(held["attachments"]) == 1 and held["embeds"][0]["title"] == "Stylized with gatys"
    assert len(fake.find("POST", f"/webhooks/{APP_ID}/{payload['token']}")) == 1
    assert not fake.find("POST", f"/channels/{CHANNEL_ID}/messages")


async def test_refine_stop_leaves_the_draft_with_its_own_buttons(bot, fake, refine_methods):
    refine_methods.GATE.clear()
    payload, draft, message = await draft_posted(bot, fake)
    await fake.wait_call("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/{message['id']}")
    _, answer = await click(bot, fake, message, button(draft, "stop"))
    assert answer.json["data"]["content"] == "⏹️ Stopping the refinement; the draft stays."
    assert answer.json["data"]["flags"] & 64

    kept = await fake.wait_call("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/{message['id']}",
                                where=lambda c: c.json.get("content", "").startswith("Draft kept"))
    assert kept.json["content"] == "Draft kept as the result (refining stopped)."
    assert [c.split(":")[1] for c in kept.custom_ids()] == ["weaker", "save", "info", "delete"]  # hub's
    assert all(button(kept, a).split(":")[2] == button(draft, "stop").split(":")[2]
               for a in ("weaker", "save"))  # the draft's own job
    held = fake.messages[message["id"]]
    assert held["attachments"] == message["attachments"]  # the draft image stays
    assert not [c for c in edits_of(fake, payload, message["id"]) if c.files]


async def test_refine_only_its_owner_can_stop_it(bot, fake, refine_methods):
    refine_methods.GATE.clear()
    payload, draft, message = await draft_posted(bot, fake)
    _, answer = await click(bot, fake, message, button(draft, "stop"), who=BOB)
    assert answer.json["type"] == 4 and answer.json["data"]["flags"] & 64
    assert answer.json["data"]["content"] == (
        "⚠️ Only the person who asked for this picture can stop refining it.")
    refine_methods.GATE.set()
    final = await fake.wait_call("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/{message['id']}",
                                 where=lambda c: bool(c.files))
    assert final.json["embeds"][0]["title"] == "Stylized with gatys"


async def test_refine_past_the_interaction_token_edits_the_draft_as_the_bot_in_the_channel(
        bot, fake, refine_methods):
    """A refinement can outlive the 15-minute token: the same message is edited through the
    channel instead (the bot's own message), never posted anew."""
    refine_methods.GATE.clear()
    payload, draft, message = await draft_posted(bot, fake)
    fake.expire(payload["token"])
    refine_methods.GATE.set()
    final = await fake.wait_call("PATCH", f"/channels/{CHANNEL_ID}/messages/{message['id']}",
                                 where=lambda c: bool(c.files))
    assert final.json["embeds"][0]["title"] == "Stylized with gatys"
    assert fake.messages[message["id"]]["embeds"][0]["title"] == "Stylized with gatys"
    assert not fake.find("POST", f"/channels/{CHANNEL_ID}/messages")  # no second message
