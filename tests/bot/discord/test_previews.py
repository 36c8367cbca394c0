"""Live previews in the interaction's progress reply: small JPEGs, throttled, replaced at the end."""

from __future__ import annotations

import io

from PIL import Image

from tests.bot.discord.conftest import send
from tests.bot.discord.fake_discord import APP_ID
from tests.bot.helpers import big_photo

PREVIEW_INTERVAL_S = 0.3


def preview_edits(fake, payload) -> list:
    """The edits of the private reply that carried a new file: the previews."""
    return [c for c in fake.find("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/@original")
            if c.files]


async def run_preview_job(bot, fake, options: str):
    bot.flow.preview_interval_s = PREVIEW_INTERVAL_S
    content = fake.attachment(big_photo(), "photo.png")
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toypreview",
                                               "options": options}))
    await fake.wait_for(lambda: not bot.flow.following and preview_edits(fake, payload))
    return payload


async def test_previews_are_small_jpegs_throttled_and_replaced_by_the_result(bot, fake):
    payload = await run_preview_job(bot, fake, "steps=12 delay=0.1")
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")

    previews = preview_edits(fake, payload)
    assert 2 <= len(previews) <= 5, len(previews)  # 1.2 s of steps, one preview per 0.3 s at most
    gaps = [b.at - a.at for a, b in zip(previews, previews[1:])]
    assert min(gaps) >= PREVIEW_INTERVAL_S * 0.95, gaps
    for call in previews:
        [upload] = call.files
        image = Image.open(io.BytesIO(upload.data))
        assert image.format == "JPEG" and image.size == (256, 171)  # fitted within 256 px
        assert len(upload.data) < 20_000
        assert call.json["attachments"] == [{"id": 0, "filename": "preview.jpg",
                                             "description": "preview of the image so far"}]
        assert "% · inverting (job `" in call.content  # the progress text rides along

    # The result is the public follow-up; the private reply ends as a link, its preview removed.
    [result] = follow_up.files
    assert Image.open(io.BytesIO(result.data)).size == (600, 400)
    original = fake.original(payload)
    assert original["content"].startswith("✅ Done in ") and original["attachments"] == []


async def test_a_failed_job_after_previews_ends_with_the_failure_text_and_no_preview(bot, fake):
    payload = await run_preview_job(bot, fake, "steps=4 delay=0.1 fail=user")
    original = await fake.wait_for(
        lambda: (lambda m: m if m["content"].startswith("⚠️") else None)(fake.original(payload)))
    assert original["content"] == "⚠️ toy says no"
    assert original["attachments"] == []
    assert preview_edits(fake, payload)  # there were previews before the failure
    assert not fake.find("POST", f"/webhooks/{APP_ID}/{payload['token']}")  # and no result
