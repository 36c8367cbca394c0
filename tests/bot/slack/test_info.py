"""The *Stylebot info* message shortcut: settings read back from a result (issue 16)."""

from __future__ import annotations

from engine.resultinfo import embedded_text
from tests.bot.slack.fake_slack import BOT_USER


async def shared_result(slack, fake, photo, text: str) -> dict:
    """Restyle a photo, then the result as the message Slack shows in the channel."""
    fake.share("C1", "U1", [fake.add_file(photo)])
    await slack.command("/stylize", text)
    await fake.delivered()
    file_id = fake.called("files.completeUploadExternal")[-1].args["files"][0]["id"]
    data = fake.uploads[file_id]
    return fake.share("C1", BOT_USER, [fake.add_file(data, "stylebot-result.png", user=BOT_USER)])


async def test_info_shortcut_tells_the_settings_privately(slack, fake, photo):
    message = await shared_result(slack, fake, photo, "method=tint strength=0.6 seed=5")
    await slack.shortcut(message, user="U2", callback_id="stylebot_info")
    call = await fake.wait_for(lambda: [c for c in fake.called("chat.postEphemeral")
                                        if "Stylebot settings" in c.args.get("text", "")])
    args = call[0].args
    assert args["user"] == "U2" and args["channel"] == "C1"
    lines = args["text"].splitlines()
    assert lines[0] == "*Stylebot settings*" and lines[1].endswith(", method tint")
    assert lines[2:] == ["Options: strength=0.6", "Seed: 5", "Size: 48x32",
                         "Use these settings on a new photo:",
                         "```/stylize method:tint strength:0.6 seed:5```"]


async def test_info_metadata_in_slack_uploads_has_no_user_id(slack, fake, photo):
    message = await shared_result(slack, fake, photo, "method=tint strength=0.6 seed=5")
    text = embedded_text(fake.file_bytes[message["files"][0]["id"]])
    assert '"method":"tint"' in text
    for private in ("U1", "u1", "C1", "/"):
        assert private not in text


async def test_info_shortcut_on_an_image_without_settings_says_so(slack, fake, photo):
    message = fake.share("C1", "U7", [fake.add_file(photo, "cat.png")])
    await slack.shortcut(message, callback_id="stylebot_info")
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert texts[-1] == "⚠️ That image carries no Stylebot settings: only results Stylebot posted do."
