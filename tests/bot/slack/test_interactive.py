"""The message shortcut, modal submissions and the buttons under a result."""

from __future__ import annotations

import pytest
from PIL import Image

from bot.slack import render as blocks


def job_of(summary) -> str:
    return summary["blocks"][2]["block_id"].removeprefix("result_")


async def first_result(slack, fake, photo, text="method=tint strength=0.6 seed=5"):
    fake.share("C1", "U1", [fake.add_file(photo)])
    await slack.command("/stylize", text)
    return (await fake.delivered())[0]


async def test_message_shortcut_opens_a_form_and_answers_in_the_thread(slack, fake, photo):
    first, second = fake.add_file(photo, "one.png"), fake.add_file(photo, "two.png")
    message = fake.share("C1", "U7", [first, second], text="look at these")
    status, _ = await slack.shortcut(message, user="U1")
    assert status == 200
    opened = await fake.wait_for(lambda: fake.called("views.open"), what="the shortcut's modal")
    view = opened[0].args["view"]
    assert view["callback_id"] == blocks.SHORTCUT_VIEW
    ids = [b.get("block_id") for b in view["blocks"]]
    for field in ("content_pick", "method", "prompt", "strength", "options", "style_pick", "styles"):
        assert field in ids

    await slack.submit(view, content_pick=second["id"], method="toystyle", style_pick=first["id"],
                       options="steps=2")
    await fake.delivered()
    done = fake.called("files.completeUploadExternal")[0].args
    assert done["channel_id"] == "C1" and done["thread_ts"] == message["ts"]
    ran = slack.bot.flow.service.recent_result(job_of(fake.results()[0])).request
    assert [s.filename for s in ran.styles] == ["one.png"] and ran.content.filename == "two.png"
    assert ran.requester.user_id == "U1"


async def test_shortcut_on_a_message_without_an_image_says_so(slack, fake):
    message = fake.share("C1", "U7", [fake.add_file(b"%PDF", "report.pdf", mimetype="application/pdf")])
    await slack.shortcut(message)
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert "That message has no image or clip: 'report.pdf' is application/pdf" in texts[0]
    assert not fake.called("views.open")


async def test_form_mistakes_are_shown_under_the_field(slack, fake, photo):
    await slack.command("/stylize", "method=tint")
    view = (await fake.wait_for(lambda: fake.called("views.open")))[0].args["view"]
    content = [fake.add_file(photo)]
    status, body = await slack.submit(view, content=content, strength="2")
    assert status == 200 and body["response_action"] == "errors"
    assert body["errors"] == {"strength": "Option 'strength' is 2, outside its allowed range 0..1."}
    status, body = await slack.submit(view, content=content, options="steps=0")
    assert "steps" in body["errors"]["options"] and "1..50" in body["errors"]["options"]
    status, body = await slack.submit(view, content=content, method="toystyle")
    assert body["errors"] == {"styles": "Method 'toystyle' needs a style image."}
    status, body = await slack.submit(view, content=content, method="toyprompt")
    assert "needs a text prompt" in body["errors"]["prompt"]
    # The Strength field is each method's strength, under whatever other name it has.
    status, body = await slack.submit(view, content=content, method="adain", strength="0.5",
                                      options="alpha=0.4")
    assert body["errors"] == {"options": "Strength is given twice; keep only the Strength field."}
    status, body = await slack.submit(view, content=content, method="gatys", strength="1.5")
    assert body["errors"] == {"strength": "Option 'strength' is 1.5, outside its allowed range 0..1."}
    status, body = await slack.submit(view, content=content, method="nada", strength="0.5")
    assert body["errors"] == {"strength": "Method 'nada' has no strength option; leave this empty."}
    assert not fake.called("chat.postMessage") and not fake.downloads


async def test_reroll_gives_a_new_seed_and_weaker_keeps_it(slack, fake, photo):
    summary = await first_result(slack, fake, photo)
    job = job_of(summary)
    assert [e["action_id"] for e in summary["blocks"][2]["elements"]] == [
        blocks.REROLL, blocks.STRONGER, blocks.WEAKER, blocks.SAVE, blocks.INFO]

    await slack.click(summary["ts"], blocks.REROLL, job, user="U2")
    await fake.delivered(2)
    rerolled = slack.bot.flow.service.recent_result(job_of(fake.results()[1]))
    assert rerolled.meta.seed != 5 and rerolled.meta.options["strength"] == 0.6
    assert rerolled.request.requester.user_id == "U2"  # the new job is the clicker's
    assert fake.result_image(0).tobytes() != fake.result_image(1).tobytes()

    await slack.click(summary["ts"], blocks.WEAKER, job)
    await fake.delivered(3)
    weaker = slack.bot.flow.service.recent_result(job_of(fake.results()[2]))
    assert weaker.meta.seed == 5 and weaker.meta.options["strength"] == 0.4
    original = Image.new("RGB", (1, 1), (200, 30, 30)).getpixel((0, 0))
    distance = [sum(abs(a - b) for a, b in zip(fake.result_image(i).getpixel((0, 0)), original))
                for i in (0, 2)]
    assert distance[1] < distance[0]  # weaker stays closer to the photo


async def test_info_tells_the_clicker_alone_how_the_result_was_made(slack, fake, photo):
    summary = await first_result(slack, fake, photo)
    job = job_of(summary)
    await slack.click(summary["ts"], blocks.INFO, job, user="U2")
    [told] = await fake.wait_for(lambda: fake.called("chat.postEphemeral"), what="the info")
    assert told.args["user"] == "U2" and told.args["channel"] == "C1"
    text = told.args["text"]
    assert text.startswith("*How this result was made*\nMade with Stylebot ")
    assert "method tint\nOptions: strength=0.6\nSeed: 5\n" in text and f"Job: {job}" in text
    assert text.endswith("```/stylize method:tint strength:0.6 seed:5```")
    assert len(fake.results()) == 1  # nothing new in the channel


async def test_save_as_preset_from_a_result(slack, fake, photo):
    summary = await first_result(slack, fake, photo)
    await slack.click(summary["ts"], blocks.SAVE, job_of(summary), user="U2")
    view = (await fake.wait_for(lambda: fake.called("views.open")))[0].args["view"]
    assert view["callback_id"] == blocks.SAVE_VIEW
    status, body = await slack.submit(view, user="U2", name="pink")
    assert body["response_action"] == "update" and "pink" in body["view"]["blocks"][0]["text"]["text"]
    _, listing = await slack.command("/preset", "list", user="U2")
    assert "`pink`: tint strength=0.6" in listing["text"]
    _, mine = await slack.command("/preset", "list", user="U1")
    assert "no presets yet" in mine["text"]
    status, body = await slack.submit(view, user="U2", name="pink")  # the name is taken now
    assert "already have a preset named 'pink'" in body["errors"]["name"]
    status, body = await slack.submit(view, user="U2", name="pink", replace=["replace"])
    assert body["response_action"] == "update"


async def test_cancel_button_only_works_for_the_owner(slack, fake, photo, slack_toys):
    slack_toys.GATE.clear()
    fake.share("C1", "U1", [fake.add_file(photo)])
    await slack.command("/stylize", "method=toy wait=true")
    posted = await fake.wait_for(lambda: list(fake.posted.values()), what="the progress message")
    progress = posted[0]
    button = next(b for b in progress["blocks"] if b["type"] == "actions")["elements"][0]
    assert button["action_id"] == blocks.CANCEL
    await slack.click(progress["ts"], blocks.CANCEL, button["value"], user="U2")
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert "You have no jobs queued or running" in texts[0]
    await slack.click(progress["ts"], blocks.CANCEL, button["value"], user="U1")
    await fake.wait_for(lambda: "was cancelled" in (progress.get("text") or ""), what="the cancelled text")
    slack_toys.GATE.set()
    assert not fake.called("files.getUploadURLExternal")


async def test_buttons_of_a_forgotten_result_explain_themselves(slack, fake, photo):
    summary = await first_result(slack, fake, photo)
    await slack.click(summary["ts"], blocks.REROLL, "feedbeef")  # a job this process never ran
    texts = await fake.wait_for(fake.ephemeral_texts, what="the explanation")
    assert "too old" in texts[0]


REFUSED = ("Only the person who asked for this result can {}: it was made with their private "
           "preset. Use your own style image or preset instead.")


@pytest.mark.security
async def test_others_clicks_on_a_result_made_with_a_private_preset_are_refused(slack, fake, photo):
    fake.share("C1", "U1", [fake.add_file(photo, "secret.png")], age_s=30)
    await slack.command("/preset", "save night method=toystyle steps=2")
    await fake.wait_for(fake.ephemeral_texts, what="the save")
    fake.share("C1", "U1", [fake.add_file(photo, "photo.png")], age_s=10)
    await slack.command("/stylize", "preset=night")
    summary = (await fake.delivered())[0]
    job = job_of(summary)
    assert [e["action_id"] for e in summary["blocks"][2]["elements"]] == [blocks.REROLL, blocks.SAVE,
                                                                        blocks.INFO]

    for n, (action, words) in enumerate(((blocks.REROLL, "re-roll it"), (blocks.SAVE, "save it as a preset"))):
        await slack.click(summary["ts"], action, job, user="U2")
        texts = await fake.wait_for(lambda: fake.ephemeral_texts()[1 + n:], what="the refusal")
        assert REFUSED.format(words) in texts[0]
    assert not fake.called("views.open") and len(fake.results()) == 1
    # a save form submitted anyway (say, opened before) is refused under its field
    form = blocks.save_modal(job, "toystyle", {"steps": 2}, 1)
    status, body = await slack.submit(form, user="U2", name="stolen")
    assert body["response_action"] == "errors" and REFUSED.format("save it as a preset") in body["errors"]["name"]
    _, listing = await slack.command("/preset", "list", user="U2")
    assert "no presets yet" in listing["text"]

    await slack.click(summary["ts"], blocks.REROLL, job)  # the owner keeps every button
    await fake.delivered(2)
    assert slack.bot.flow.service.recent_result(job_of(fake.results()[1])).request.requester.user_id == "U1"
