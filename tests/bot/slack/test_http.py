"""The HTTP endpoint: Slack's signatures are checked; events (mentions) are handled."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from .fake_slack import BOT_USER


async def test_forged_and_stale_requests_are_refused_before_anything_happens(slack, fake):
    body = slack.command_body("/stylize", "method=tint")
    status, _ = await slack.post(body, secret="f" * 32)  # signed with the wrong secret
    assert status == 401
    status, _ = await slack.post(body, timestamp=int(time.time()) - 6 * 60)  # correctly signed, stale
    assert status == 401
    tampered = slack.signed_headers(body)
    changed = body.replace("tint", "toy").encode()
    async with slack.http.post(slack.url, data=changed, headers=tampered) as resp:
        assert resp.status == 401
    async with slack.http.post(slack.url, data=body.encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
        assert resp.status == 401  # no signature at all
    assert fake.calls == []  # not even auth.test
    status, _ = await slack.post(body)
    assert status == 200


async def test_url_verification_echoes_the_challenge(slack):
    body = json.dumps({"token": "legacy", "challenge": "abc123", "type": "url_verification"})
    status, answer = await slack.post(body, content_type="application/json")
    assert status == 200 and answer == {"challenge": "abc123"}


async def test_mention_with_an_image_and_a_method_prompt(slack, fake, photo):
    image = fake.add_file(photo, "cat.png")
    status, _ = await slack.mention("toyprompt: oil painting in Van Gogh style", files=[image],
                                    thread_ts="1700000000.000001")
    assert status == 200
    summary = (await fake.delivered())[0]
    assert "> oil painting in Van Gogh style" in summary["blocks"][0]["text"]["text"]
    assert summary["thread_ts"] == "1700000000.000001"
    done = fake.called("files.completeUploadExternal")[0].args
    assert done["thread_ts"] == "1700000000.000001"
    assert not fake.called("conversations.replies")  # the attached image was enough


async def test_mention_with_a_preset(slack, fake, photo):
    await slack.command("/preset", "save night method=tint strength=0.3")
    await fake.wait_for(fake.ephemeral_texts, what="the save")
    await slack.mention("tint preset=night seed=4", files=[fake.add_file(photo)])
    summary = (await fake.delivered())[0]
    assert "strength=0.3" in summary["blocks"][1]["elements"][0]["text"]


async def test_mention_in_a_thread_uses_the_threads_latest_image(slack, fake, photo):
    root = fake.share("C1", "U5", [], text="thread root", age_s=30)
    fake.share("C1", "U1", [fake.add_file(photo, "in-thread.png")], thread_ts=root["ts"], age_s=20)
    fake.share("C1", "U1", [fake.add_file(photo, "in-channel.png")], age_s=10)
    await slack.mention("tint steps=1", thread_ts=root["ts"])
    await fake.delivered()
    assert fake.called("conversations.replies")[0].args["ts"] == root["ts"]
    assert fake.downloads[0][0].endswith("/in-thread.png")


async def test_mention_without_any_image_or_with_a_document(slack, fake):
    await slack.mention("tint")
    texts = await fake.wait_for(fake.ephemeral_texts, what="the hint")
    assert "Attach an image to the message you mention me in" in texts[0]
    await slack.mention("tint", files=[fake.add_file(b"a,b", "data.csv", mimetype="text/csv")])
    texts = await fake.wait_for(lambda: fake.ephemeral_texts()[1:], what="the refusal")
    assert "Your message has no image or clip: 'data.csv' is text/csv" in texts[0]
    assert not fake.called("chat.postMessage")


async def test_slacks_retries_of_an_event_are_not_run_twice(slack, fake, photo):
    image = fake.add_file(photo)
    await slack.mention("tint", files=[image])
    await fake.delivered()
    status, _ = await slack.mention("tint", files=[image], headers={"X-Slack-Retry-Num": "1",
                                                                    "X-Slack-Retry-Reason": "http_timeout"})
    assert status == 200  # acknowledged, so Slack stops retrying
    await asyncio.sleep(0.5)
    assert len(fake.called("files.getUploadURLExternal")) == 1
    assert len(fake.called("chat.postMessage")) == 2  # one progress message, one summary


async def test_bot_mention_is_removed_from_the_text(slack, fake, photo):
    await slack.mention(f"help <@{BOT_USER}>")
    texts = await fake.wait_for(fake.ephemeral_texts, what="help")
    assert "Stylebot" in texts[0] and "/sd <prompt>" in texts[0]


@pytest.mark.security
async def test_a_non_numeric_timestamp_is_refused_like_a_bad_signature(slack, fake):
    body = slack.command_body("/stylize", "method=tint")
    for stamp in ("abc", "", "1e9", "١٧٠٠٠٠٠٠٠٠"):
        headers = {**slack.signed_headers(body), "X-Slack-Request-Timestamp": stamp}
        async with slack.http.post(slack.url, data=body.encode(), headers=headers) as resp:
            assert resp.status == 401, stamp
    assert fake.calls == []


@pytest.mark.security
async def test_a_scheme_relative_file_link_gets_the_clear_refusal_not_the_bug_reply(slack, fake, photo):
    """A file whose URL has no scheme (an external file, say) is refused like any foreign link."""
    info = fake.add_file(photo, "remote.png")
    relative = "//files.slack.com/files-pri/T0TEST-F0001/download/remote.png"
    info.update(url_private=relative, url_private_download=relative)
    await slack.mention("tint", files=[info])
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert "I only fetch images shared in Slack" in texts[0] and "remote.png" in texts[0]
    assert "Something went wrong" not in texts[0]
    assert not fake.downloads and not fake.called("chat.postMessage")
