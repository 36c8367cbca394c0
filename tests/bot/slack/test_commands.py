"""Slash commands: the image comes from the channel, a link or a modal; jobs end in the channel."""

from __future__ import annotations


import pytest
from PIL import Image

from bot.slack import render as blocks


async def result_of(fake):
    """(uploaded image, completeUploadExternal args, summary message) of the delivered result."""
    summary = (await fake.delivered())[-1]
    return fake.result_image(), fake.called("files.completeUploadExternal")[-1].args, summary


async def test_stylize_uses_the_latest_image_the_user_shared(slack, fake, photo):
    older = fake.add_file(b"not this one", "old.png")
    fake.share("C1", "U1", [older], age_s=60)
    mine = fake.add_file(photo, "photo.png")
    fake.share("C1", "U1", [mine], age_s=10)
    other = fake.add_file(b"someone else's", "other.png", user="U2")
    fake.share("C1", "U2", [other], age_s=1)

    status, body = await slack.command("/stylize", "method=tint strength=1 seed=3 steps=3")
    assert status == 200 and not body  # acknowledged at once, nothing said yet

    image, upload, summary = await result_of(fake)
    assert image.size == (48, 32)
    assert image.getpixel((0, 0)) != (200, 30, 30)  # strength 1: all tint
    assert upload["channel_id"] == "C1" and not upload.get("thread_ts")
    # the bot token went only to Slack's file host, and only for the user's own latest image
    assert [d[0].rsplit("/", 1)[-1] for d in fake.downloads] == ["photo.png"]
    text = " ".join(b.get("text", {}).get("text", "") for b in summary["blocks"] if b["type"] == "section")
    context = summary["blocks"][1]["elements"][0]["text"]
    assert "tint" in text and "<@U1>" in text
    assert "strength=" not in context  # strength 1 is the default, so not "chosen"
    assert "steps=3" in context and "seed 3" in context
    buttons = [e["action_id"] for e in summary["blocks"][2]["elements"]]
    assert buttons == [blocks.REROLL, blocks.WEAKER, blocks.SAVE, blocks.INFO]  # at full strength: no Stronger
    # one progress message: queued, then edited, then removed once the result is there
    progress = [m for m in fake.posted.values() if m is not summary]
    assert len(progress) == 1 and progress[0]["deleted"] and progress[0]["edits"]
    assert "job is next in line" in progress[0]["text"] or progress[0]["edits"]
    assert len(fake.called("auth.test")) == 1


async def test_sd_style_command_takes_the_bare_words_as_its_prompt(slack, fake, photo):
    fake.share("C1", "U1", [fake.add_file(photo)])
    status, _ = await slack.command("/toyprompt", "a watercolour fox strength=0.6 seed=7")
    assert status == 200
    image, _, summary = await result_of(fake)
    section = summary["blocks"][0]["text"]["text"]
    context = summary["blocks"][1]["elements"][0]["text"]
    assert "> a watercolour fox" in section
    assert "strength=0.6" in context and "seed 7" in context
    expected = Image.blend(Image.new("RGB", (1, 1), (200, 30, 30)),  # the toy's colour for 17 characters
                           Image.new("RGB", (1, 1), (119, 80, 160)), 0.6)
    assert image.getpixel((0, 0)) == expected.getpixel((0, 0))


async def test_without_a_recent_image_a_modal_asks_for_one_with_the_same_fields(slack, fake, photo):
    stale = fake.add_file(photo, "stale.png")
    fake.share("C1", "U1", [stale], age_s=3600)  # older than the 10-minute window
    status, body = await slack.command("/stylize", "method=tint strength=0.3 seed=7")
    assert status == 200 and not body
    opened = await fake.wait_for(lambda: fake.called("views.open"), what="the modal")
    view = opened[0].args["view"]
    assert opened[0].args["trigger_id"].startswith("trigger-")
    by_id = {b.get("block_id"): b for b in view["blocks"]}
    assert by_id["content"]["element"]["type"] == "file_input" and not by_id["content"]["optional"]
    assert by_id["method"]["element"]["initial_option"]["value"] == "tint"
    assert by_id["strength"]["element"]["initial_value"] == "0.3"
    assert by_id["options"]["element"]["initial_value"] == "seed=7"
    assert "strength (0..1)" in by_id["options"]["hint"]["text"]  # ranges from the declaration
    assert not fake.downloads

    upload = fake.add_file(photo, "picked.png")
    status, body = await slack.submit(view, content=[upload])
    assert status == 200 and not body  # the modal closes
    image, done, summary = await result_of(fake)
    assert done["channel_id"] == "C1"
    assert "strength=0.3" in summary["blocks"][1]["elements"][0]["text"]
    assert fake.downloads[-1][0].endswith("/picked.png")


async def test_a_slack_file_link_in_the_text_is_used(slack, fake, photo):
    info = fake.add_file(photo, "linked.png")
    status, _ = await slack.command("/stylize", f"method=tint <{info['permalink']}> steps=1")
    assert status == 200
    await result_of(fake)
    assert [c.args["file"] for c in fake.called("files.info")] == [info["id"]]
    assert not fake.called("conversations.history")


async def test_links_outside_slack_are_refused(slack, fake):
    status, body = await slack.command("/stylize", "method=tint https://example.com/cat.png")
    assert status == 200
    assert "I only fetch images shared in Slack" in body["text"]
    assert not fake.downloads and not fake.called("chat.postMessage")


async def test_a_non_image_file_gets_a_clear_private_error(slack, fake):
    info = fake.add_file(b"%PDF-1.4", "notes.pdf", mimetype="application/pdf")
    await slack.command("/stylize", f"method=tint {info['url_private']}")
    texts = await fake.wait_for(fake.ephemeral_texts, what="an error")
    assert "'notes.pdf' is application/pdf" in texts[0]
    assert not fake.downloads and not fake.called("chat.postMessage")


async def test_oversized_and_broken_images_are_refused_privately(slack, fake, photo):
    big = fake.add_file(photo, "huge.png", size=30_000_000)
    await slack.command("/stylize", f"method=tint {big['permalink']}")
    texts = await fake.wait_for(fake.ephemeral_texts, what="an error")
    assert "'huge.png' is 30.0 MB; the limit is 1 MB" in texts[0]
    assert not fake.downloads

    broken = fake.add_file(b"\x89PNG\r\n\x1a\n broken", "broken.png")
    await slack.command("/stylize", f"method=tint {broken['permalink']}")
    texts = await fake.wait_for(lambda: fake.ephemeral_texts()[1:], what="a second error")
    assert "not an image Stylebot can read" in texts[0]
    assert not fake.called("chat.postMessage")


async def test_bad_options_are_answered_at_once_naming_the_range(slack, fake):
    status, body = await slack.command("/stylize", "method=tint strength=5")
    assert status == 200
    assert body["text"] == "⚠️ Option 'strength' is 5, outside its allowed range 0..1."
    assert body["response_type"] == "ephemeral"
    status, body = await slack.command("/stylize", "method=tint colour=red")
    assert ("Method 'tint' has no option 'colour'; its options are: strength, steps, seed, size"
            in body["text"])
    status, body = await slack.command("/stylize", "method=nope")
    assert "Unknown method 'nope'" in body["text"]
    status, body = await slack.command("/toyprompt", "")
    assert "needs a text prompt" in body["text"]
    assert [c.method for c in fake.calls] == ["auth.test"]  # nothing fetched, nothing posted


async def test_help_lists_methods_with_their_declared_ranges(slack):
    status, body = await slack.command("/stylize", "help")
    assert status == 200
    assert "/sd <prompt>" in body["text"]
    assert "*tint* (Toy tint): strength (0..1), steps (1..50)" in body["text"]


async def test_a_full_queue_is_explained(slack, fake, photo, slack_toys):
    slack_toys.GATE.clear()  # jobs with wait=true hold the worker
    fake.share("C1", "U1", [fake.add_file(photo)])
    for _ in range(2):
        await slack.command("/stylize", "method=toy wait=true")
    await fake.wait_for(lambda: len(fake.called("chat.postMessage")) == 2, what="two jobs")
    await slack.command("/stylize", "method=toy")
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert "You already have 2 jobs queued or running (the limit is 2)" in texts[0]
    queued = [m["text"] for m in fake.posted.values()]
    assert any("number 1 in the queue" in t or "next in line" in t for t in queued)
    slack_toys.GATE.set()
    await fake.delivered(2)


async def test_where_the_bot_cannot_post_the_job_is_dropped_and_the_user_told(slack, fake, photo):
    fake.share("C9", "U1", [fake.add_file(photo)])
    fake.fail.update({"chat.postMessage": "not_in_channel", "chat.postEphemeral": "channel_not_found"})
    await slack.command("/stylize", "method=tint", channel="C9")
    await fake.wait_for(lambda: fake.responses, what="an answer through response_url")
    assert "invite me" in fake.responses[0]["text"]
    assert fake.responses[0]["response_type"] == "ephemeral"
    assert not fake.called("files.getUploadURLExternal")
    assert slack.bot.flow.service.queue.waiting_count == 0


async def test_when_the_form_cannot_open_in_time_the_user_is_told_what_to_do(slack, fake):
    fake.fail["views.open"] = "expired_trigger_id"
    await slack.command("/stylize", "method=tint")
    texts = await fake.wait_for(fake.ephemeral_texts, what="the hint")
    assert "I found no image you shared here in the last 10 min" in texts[0]


async def test_a_refused_upload_ends_the_progress_message_with_the_reason(slack, fake, photo):
    fake.share("C1", "U1", [fake.add_file(photo)])
    fake.fail["files.completeUploadExternal"] = "not_allowed_token_type"
    await slack.command("/stylize", "method=tint")
    message = await fake.wait_for(lambda: next((m for m in fake.posted.values()
                                                if "did not finish" in (m.get("text") or "")), None),
                                  what="the failure text")
    assert "Slack refused my message or upload (not_allowed_token_type)" in message["text"]
    assert slack.bot.health()["failures"] == 1


async def test_the_chat_rate_limit_binds_on_slack_too(slack, fake, photo):
    """Once enforced by Discord only; the service now limits every chat platform alike."""
    slack.bot.flow.service.limiter.count = 1
    fake.share("C1", "U1", [fake.add_file(photo)])
    await slack.command("/stylize", "method=tint")
    await fake.delivered()
    await slack.command("/stylize", "method=tint")
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert texts[-1].startswith("⚠️ Slow down: you can start 1 jobs every 60 s; try again in ")
    assert len(fake.results()) == 1


@pytest.mark.security
async def test_a_linked_file_from_a_conversation_the_user_cannot_see_is_refused(slack, fake, photo):
    """The bot token can read files of every channel the bot is in; a link names any of them."""
    secret = fake.add_file(photo, "private-plan.png", user="U1")
    fake.share("G_PRIVATE", "U1", [secret])  # shared only in a private channel U2 is not in
    status, body = await slack.command("/stylize", f"method=tint <{secret['permalink']}>", user="U2")
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert texts[-1] == (f"⚠️ I cannot open the Slack file {secret['id']} here: share it in this "
                         "conversation (or upload it yourself) and try again.")
    assert not fake.downloads and not fake.results()
    # its owner, and anyone once it is shared where they ask, may use it
    fake.share("C1", "U1", [secret])
    await slack.command("/stylize", f"method=tint <{secret['permalink']}> steps=1", user="U2")
    await result_of(fake)


async def test_queue_lists_your_jobs_with_an_eta(slack, fake, photo, slack_toys, service):
    from tests.bot.discord.test_queue import seed_runs

    await seed_runs(service, "toy", [480.0, 600.0, 720.0])  # median 10 min
    status, body = await slack.command("/queue")
    assert (status, body["text"]) == (200, "You have no jobs queued or running.")
    slack_toys.GATE.clear()
    fake.share("C1", "U1", [fake.add_file(photo)])
    await slack.command("/stylize", "method=toy wait=true")
    await fake.wait_for(lambda: service.queue.running_count == 1, what="the job running")
    await slack.command("/stylize", "method=toy")
    await fake.wait_for(lambda: service.queue.waiting_count == 1, what="one waiting")
    status, body = await slack.command("/queue")
    lines = body["text"].splitlines()
    assert body["response_type"] == "ephemeral" and len(lines) == 2
    assert lines[0].startswith("• `") and lines[0].endswith("` toy: running now, about 10 min left")
    assert lines[1].endswith("` toy: position 1, about 20 min left")
    slack_toys.GATE.set()
    await fake.delivered(2)


async def test_stats_for_workspace_admins_and_the_admin_group_only(slack, fake, service):
    from tests.bot.discord.test_queue import seed_runs

    await seed_runs(service, "tint", [3.0, 5.0])
    status, body = await slack.command("/stats", user="U1")
    assert body == {"text": "⚠️ Only workspace admins can see /stats.", "response_type": "ephemeral"}

    fake.users["U1"] = {"is_admin": True}
    status, body = await slack.command("/stats", user="U1")
    assert body["response_type"] == "ephemeral"
    assert body["text"] == ("*Stylebot stats* (the whole job log)\n"
                            "```tint: 2 jobs (2 done); median 3 s, p95 5 s```")

    slack.bot.listeners.settings = service.settings.model_copy(update={"slack_admin_group": "S1"})
    fake.usergroups["S1"] = ["U5"]
    _, body = await slack.command("/stats", user="U5")
    assert body["text"].startswith("*Stylebot stats*")
    _, body = await slack.command("/stats", user="U6")
    assert body["text"] == "⚠️ Only workspace admins and members of the Stylebot admin group can see /stats."
