"""/stylize, /sd and /nada through discord.py's parsing, against the fake Discord."""

from __future__ import annotations

import io
import logging
import types

import discord
import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from engine.errors import UserError
from tests.bot.discord.conftest import image_of, send
from tests.bot.discord.fake_discord import ALICE, APP_ID, BOB, user
from tests.bot.discord.toys import PROMPTS
from tests.engine.conftest import png_bytes

CAROL = user(333333333333333333, "carol")
DAVE = user(444444444444444444, "dave")


def fields_of(call) -> dict[str, str]:
    return {f["name"]: f["value"] for f in call.json["embeds"][0]["fields"]}


def callback(fake, payload):
    return fake.find("POST", f"/interactions/{payload['id']}/")


async def ephemeral_refusal(fake, payload) -> str:
    """The immediate answer: an ephemeral message instead of a deferral."""
    call = await fake.wait_call("POST", f"/interactions/{payload['id']}/")
    assert call.json["type"] == 4 and call.json["data"]["flags"] & 64
    return call.json["data"]["content"]


async def last_edit(fake, payload, starts: str) -> str:
    path = f"/webhooks/{APP_ID}/{payload['token']}/messages/@original"
    call = await fake.wait_call("PATCH", path, where=lambda c: c.content.startswith(starts))
    return call.content


async def test_stylize_defers_edits_and_posts_the_result_with_buttons(bot, fake):
    photo = Image.new("RGB", (48, 32), (200, 30, 30))
    photo.putpixel((5, 5), (10, 220, 40))
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    content = fake.attachment(buffer.getvalue(), "photo.png")
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toy",
                                               "options": "steps=3 tag=hello", "seed": 42}))
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")

    deferral = callback(fake, payload)[0]
    assert deferral.json == {"type": 5, "data": {"flags": 64}}  # thinking, only the user sees it
    assert deferral.query == {"with_response": "1"}
    assert fake.downloads == [content["url"].split(str(fake.port))[1]]
    edits = [c.content for c in fake.find("PATCH", payload["token"])]
    assert edits[0].startswith("⏳ Queued: next in line (job `")

    # The result: a public follow-up (no ephemeral flag) carrying the file and a short embed.
    assert not (follow_up.json.get("flags") or 0) & 64
    [upload] = follow_up.files
    result = image_of(upload)
    assert result.format == "PNG" and result.size == (48, 32)
    assert result.convert("RGB").getpixel((5, 5)) == (245, 35, 215)  # the toy inverts colours
    [embed] = follow_up.json["embeds"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert embed["title"] == "Stylized with toy"
    assert fields["Options"] == "steps=3 tag=hello" and fields["Seed"] == "42"
    assert embed["image"]["url"] == f"attachment://{upload.filename}"
    job_id = embed["footer"]["text"].split()[1]
    assert follow_up.custom_ids() == [f"stylebot:reroll:{job_id}", f"stylebot:save:{job_id}",
                                      f"stylebot:info:{job_id}", f"stylebot:delete:{job_id}:{ALICE['id']}"]
    link = await fake.wait_call("PATCH", payload["token"], where=lambda c: "https://" in c.content)
    assert link.content.startswith("✅ Done in ") and f"(job `{job_id}`): https://discord.com/channels/" in link.content


async def test_sd_and_nada_shortcuts_translate_their_options(bot, fake):
    payload = send(bot, fake.slash("sd", {"image": fake.attachment(png_bytes(), "a.png"),
                                          "prompt": "a fox in snow", "negative": "blurry",
                                          "guidance": 3.5, "steps": 4, "strength": 0.25, "seed": 7}))
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    fields = {f["name"]: f["value"] for f in follow_up.json["embeds"][0]["fields"]}
    assert fields["Options"] == 'negative_prompt=blurry strength=0.25 guidance_scale=3.5 steps=4'
    assert fields["Prompt"] == "a fox in snow" and fields["Seed"] == "7"

    payload = send(bot, fake.slash("nada", {"image": fake.attachment(png_bytes(), "b.png"),
                                            "prompt": "a pencil sketch", "options": "steps=2"}, who=BOB))
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    assert follow_up.json["embeds"][0]["title"] == "Stylized with nada"
    assert fields_of(follow_up)["Options"] == "steps=2"
    assert PROMPTS == ["a fox in snow", "a pencil sketch"]


async def test_an_option_the_method_lacks_is_refused_naming_those_that_apply(bot, fake):
    content = fake.attachment(png_bytes(), "a.png")
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toy", "style_weight": 1e5}))
    text = await ephemeral_refusal(fake, payload)
    assert text == ("⚠️ Method 'toy' has no option 'style_weight'; its options are: "
                    "steps, delay, fail, tag, wait, size, seed.")
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toyfade", "prompt": "hi"}))
    assert "Method 'toyfade' takes no prompt" in await ephemeral_refusal(fake, payload)
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toy",
                                               "style": fake.attachment(png_bytes(), "s.png")}))
    assert await ephemeral_refusal(fake, payload) == "⚠️ Method 'toy' takes no style image."
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toyfade", "strength": 3.0}))
    assert "'strength' is 3, outside its allowed range 0..1" in await ephemeral_refusal(fake, payload)
    assert fake.downloads == []  # refused before anything was fetched


async def test_non_images_oversized_and_foreign_attachments_are_refused_before_download(bot, fake):
    text_file = fake.attachment(b"hello", "notes.txt", "text/plain")
    payload = send(bot, fake.slash("stylize", {"content": text_file, "method": "toy"}))
    assert await ephemeral_refusal(fake, payload) == (
        "⚠️ The content image 'notes.txt' is a text/plain file; attach an image or a clip "
        "(PNG, JPEG, WebP, GIF, BMP or TIFF; animated GIF, WebP or PNG; or a short MP4, WebM "
        "or MOV).")

    big = fake.attachment(png_bytes(), "huge.png", size=5 * 1024 * 1024)  # limit is 1 MB here
    payload = send(bot, fake.slash("stylize", {"content": big, "method": "toy"}))
    assert await ephemeral_refusal(fake, payload) == (
        "⚠️ The content image 'huge.png' is 5.0 MB; the limit is 1.0 MB.")

    elsewhere = fake.attachment(png_bytes(), "x.png", host="http://localhost:%d" % fake.port)
    payload = send(bot, fake.slash("stylize", {"content": elsewhere, "method": "toy"}))
    assert await ephemeral_refusal(fake, payload) == (
        "⚠️ The content image 'x.png' is not stored on Discord; upload the image to Discord itself.")
    assert fake.downloads == []



NO_STATE = types.SimpleNamespace(http=None)  # metadata checks never download
FOREIGN_URLS = ["http://cdn.discordapp.com/attachments/1/2/x.png",           # not https
                "https://cdn.discordapp.com:8443/attachments/1/2/x.png",     # another port
                "http://media.discordapp.net:80/attachments/1/2/x.png",
                "https://user:pw@cdn.discordapp.com/attachments/1/2/x.png",  # credentials
                "//cdn.discordapp.com/attachments/1/2/x.png",                # no scheme
                "https://cdn.discordapp.com.evil.example/attachments/1/2/x.png",
                "https://cdn.discordapp.com:99999/attachments/1/2/x.png"]


@pytest.mark.security
@pytest.mark.parametrize("url", FOREIGN_URLS)
def test_cdn_attachments_must_be_https_on_the_default_port(fake, url):
    """The CDN hosts are trusted over https on port 443 only; the API host as configured."""
    from bot.discord.inputs import check_attachment

    payload = {**fake.attachment(png_bytes(), "x.png"), "url": url, "proxy_url": url}
    with pytest.raises(UserError, match="is not stored on Discord"):
        check_attachment(discord.Attachment(data=payload, state=NO_STATE), what="content image",
                         max_bytes=1 << 20)
    other_port = f"http://127.0.0.1:{fake.port + 1}/cdn/attachments/1/2/x.png"  # API host, wrong port
    payload = {**payload, "url": other_port, "proxy_url": other_port}
    with pytest.raises(UserError, match="is not stored on Discord"):
        check_attachment(discord.Attachment(data=payload, state=NO_STATE), what="content image",
                         max_bytes=1 << 20)
    for good in ("https://cdn.discordapp.com/attachments/1/2/x.png",
                 "https://media.discordapp.net:443/attachments/1/2/x.png",
                 fake.root + "/cdn/attachments/1/2/x.png"):  # the API host discord.py talks to
        payload = {**payload, "url": good, "proxy_url": good}
        check_attachment(discord.Attachment(data=payload, state=NO_STATE), what="content image",
                         max_bytes=1 << 20)


@pytest.mark.security
async def test_an_attachment_over_plain_http_on_the_cdn_is_refused_before_download(bot, fake):
    url = "http://cdn.discordapp.com:%d/attachments/1/2/x.png" % fake.port
    attachment = {**fake.attachment(png_bytes(), "x.png"), "url": url, "proxy_url": url}
    payload = send(bot, fake.slash("stylize", {"content": attachment, "method": "toy"}))
    assert await ephemeral_refusal(fake, payload) == (
        "⚠️ The content image 'x.png' is not stored on Discord; upload the image to Discord itself.")
    assert fake.downloads == []

async def test_a_broken_image_is_refused_in_the_private_response(bot, fake):
    noisy = io.BytesIO()
    Image.effect_noise((64, 64), 80).save(noisy, "PNG")
    broken = fake.attachment(noisy.getvalue()[:2000], "broken.png")  # cut off mid-way
    payload = send(bot, fake.slash("stylize", {"content": broken, "method": "toy"}))
    text = await last_edit(fake, payload, "⚠️")
    assert text == "⚠️ The content image is truncated or damaged and cannot be read."
    assert callback(fake, payload)[0].json["data"]["flags"] & 64
    assert not fake.find("POST", f"/webhooks/{APP_ID}/{payload['token']}")


async def test_queue_limits_and_the_rate_limit_are_friendly(bot, fake, bot_methods):
    bot_methods.GATE.clear()  # jobs with wait=true hold the worker
    content = fake.attachment(png_bytes(), "a.png")
    first = send(bot, fake.slash("stylize", {"content": content, "method": "toy", "options": "wait=true"}))
    await last_edit(fake, first, "⏳")
    second = send(bot, fake.slash("stylize", {"content": content, "method": "toy"}))
    await last_edit(fake, second, "⏳")
    third = send(bot, fake.slash("stylize", {"content": content, "method": "toy"}))
    assert await last_edit(fake, third, "⚠️") == (
        "⚠️ You already have 2 jobs queued or running (the limit is 2); wait for one to finish "
        "or cancel one.")
    for who in (BOB, CAROL):
        await last_edit(fake, send(bot, fake.slash("stylize", {"content": content, "method": "toy"},
                                                   who=who)), "⏳")
    full = send(bot, fake.slash("stylize", {"content": content, "method": "toy"}, who=DAVE))
    assert (await last_edit(fake, full, "⚠️")).startswith("⚠️ The queue is full (3 jobs waiting)")
    bot_methods.GATE.set()
    await bot.flow.idle()

    bot.service.limiter.count = 1
    bot.service.limiter._hits.clear()
    send(bot, fake.slash("stylize", {"content": content, "method": "toy"}, who=BOB))
    limited = send(bot, fake.slash("stylize", {"content": content, "method": "toy"}, who=BOB))
    assert (await last_edit(fake, limited, "⚠️")).startswith(
        "⚠️ Slow down: you can start 1 jobs every 60 s; try again in ")


async def test_progress_edits_are_throttled(bot, fake):
    bot.flow.edit_interval_s = 0.5
    payload = send(bot, fake.slash("stylize", {"content": fake.attachment(png_bytes(), "a.png"),
                                               "method": "toy", "options": "steps=30 delay=0.05"}))
    await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    updates = [c for c in fake.find("PATCH", payload["token"]) if not c.content.startswith("✅")]
    assert any("▰" in c.content for c in updates), [c.content for c in updates]
    gaps = [b.at - a.at for a, b in zip(updates, updates[1:])]
    assert gaps and min(gaps) >= 0.45  # 30 progress steps, but never two edits within the interval


async def test_results_over_the_upload_limit_are_re_encoded_not_dropped(bot, fake):
    noisy = Image.effect_noise((128, 128), 120).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, "PNG")
    assert len(buffer.getvalue()) > 12_000
    payload = send(bot, fake.slash("stylize", {"content": fake.attachment(buffer.getvalue(), "n.png"),
                                               "method": "toy"}, upload_limit=12_000))
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    [upload] = follow_up.files
    assert len(upload.data) <= 12_000
    result = image_of(upload)
    assert result.format == "JPEG" and max(result.size) <= 128
    expected = ImageOps.invert(noisy).resize(result.size)
    difference = ImageChops.difference(result.convert("L"), expected.convert("L"))
    assert ImageStat.Stat(difference).mean[0] < 40  # the same picture, compressed
    assert "to fit the upload limit" in follow_up.json["embeds"][0]["footer"]["text"]


async def test_a_failing_job_tells_its_user_the_job_id_and_logs_it(bot, fake, caplog):
    caplog.set_level(logging.ERROR)
    content = fake.attachment(png_bytes(), "a.png")
    bad = send(bot, fake.slash("stylize", {"content": content, "method": "toy", "options": "fail=bug"}))
    other = fake.attachment(png_bytes((40, 40)), "b.png")  # another size: not batched with the bad one
    good = send(bot, fake.slash("stylize", {"content": other, "method": "toy"}, who=BOB))
    text = await last_edit(fake, bad, "❌")
    job_id = text.split("(job ")[1].split(")")[0]
    assert text == f"❌ Something went wrong on our side (job {job_id}); it has been logged."
    assert any(job_id in r.getMessage() for r in caplog.records)
    await fake.wait_call("POST", f"/webhooks/{APP_ID}/{good['token']}")  # the other user is unaffected
