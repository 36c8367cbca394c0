"""/preset save|list|show|delete|use, answered privately; each user sees only their own."""

from __future__ import annotations



async def test_save_list_show_use_delete(slack, fake, photo):
    status, body = await slack.command("/preset", "save night method=tint strength=0.4 steps=3")
    assert status == 200 and not body
    texts = await fake.wait_for(fake.ephemeral_texts, what="the confirmation")
    assert texts[0] == "Saved your preset `night`: tint strength=0.4 steps=3."

    _, listing = await slack.command("/preset", "list")
    assert listing["response_type"] == "ephemeral"
    assert "• `night`: tint strength=0.4 steps=3 (used 0×)" in listing["text"]
    _, shown = await slack.command("/preset", "show night")
    assert "method tint" in shown["text"] and "`/stylize preset=night`" in shown["text"]

    fake.share("C1", "U1", [fake.add_file(photo)])
    await slack.command("/preset", "use night seed=9")
    summary = (await fake.delivered())[0]
    context = summary["blocks"][1]["elements"][0]["text"]
    assert "strength=0.4 steps=3" in context and "seed 9" in context
    _, listing = await slack.command("/preset", "list")
    assert "(used 1×)" in listing["text"]

    _, deleted = await slack.command("/preset", "delete night")
    assert deleted["text"] == "Deleted your preset `night`."
    _, listing = await slack.command("/preset", "list")
    assert "no presets yet" in listing["text"]


async def test_another_users_preset_is_invisible(slack, fake, photo):
    await slack.command("/preset", "save mine method=tint strength=0.2", user="U1")
    await fake.wait_for(fake.ephemeral_texts, what="the save")
    _, shown = await slack.command("/preset", "show mine", user="U2")
    assert shown["text"].startswith("⚠️") and "mine" in shown["text"]
    _, deleted = await slack.command("/preset", "delete mine", user="U2")
    assert deleted["text"].startswith("⚠️")

    fake.share("C1", "U2", [fake.add_file(photo)])
    await slack.command("/stylize", "preset=mine", user="U2")
    texts = await fake.wait_for(lambda: fake.ephemeral_texts()[1:], what="the refusal")
    assert "preset" in texts[0] and "mine" in texts[0] and texts[0].startswith("⚠️")
    assert not fake.called("files.getUploadURLExternal")
    _, listing = await slack.command("/preset", "list", user="U1")
    assert "`mine`" in listing["text"]  # still there for its owner


async def test_a_style_preset_takes_the_image_just_shared_as_its_style(slack, fake, photo):
    _, body = await slack.command("/preset", "save sky method=toystyle steps=2")
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert "needs a style image: share it here first" in texts[0]

    fake.share("C1", "U1", [fake.add_file(photo, "starry.png")])
    await slack.command("/preset", "save sky method=toystyle steps=2")
    texts = await fake.wait_for(lambda: fake.ephemeral_texts()[1:], what="the confirmation")
    assert texts[0] == "Saved your preset `sky`: toystyle steps=2 with 1 style image(s)."
    _, shown = await slack.command("/preset", "show sky")
    assert "style 1: starry.png" in shown["text"]


async def test_preset_command_mistakes_are_answered_at_once(slack, fake):
    _, body = await slack.command("/preset", "rename x")
    assert "/preset takes one of: save, use, show, delete, list" in body["text"]
    _, body = await slack.command("/preset", "show")
    assert "needs a name" in body["text"]
    _, body = await slack.command("/preset", "save bad! method=tint")
    await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert "preset name must be 1-32 characters" in fake.ephemeral_texts()[0]
