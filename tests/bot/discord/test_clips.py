"""Clips on Discord: a GIF or MP4 attachment comes back as the same kind with its frames line,
fitted to the interaction's upload limit (saying what was lowered), and every refusal is one
line the user sees. Clips are generated here; ``toyclip`` runs through the engine's run_clip."""

from __future__ import annotations

import re

import pytest
from PIL import ImageOps

from tests.bot.clips import clip_toys, flat_frames, frames_of, gif_bytes, mp4_bytes, noisy_frames
from tests.bot.discord.conftest import send
from tests.bot.discord.fake_discord import APP_ID
from tests.bot.discord.test_stylize import ephemeral_refusal, last_edit
from tests.engine.conftest import png_bytes

pytestmark = pytest.mark.usefixtures("clip_toys")
assert clip_toys  # the fixture, imported for pytest to find


@pytest.fixture
def bot_settings(bot_settings):
    """The folder's settings, with clips limited to 1 s."""
    return bot_settings.model_copy(update={"max_video_s": 1.0})


def clip_field(follow_up) -> str:
    return {f["name"]: f["value"] for f in follow_up.json["embeds"][0]["fields"]}["Clip"]


async def test_a_gif_comes_back_as_a_gif_with_frames_fps_and_per_frame_progress(bot, fake):
    frames = flat_frames(12)
    content = fake.attachment(gif_bytes(frames), "dance.gif", "image/gif")
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toyclip",
                                               "options": "steps=2 delay=0.03"}))
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    [upload] = follow_up.files
    assert upload.filename.endswith(".gif")
    kind, n, fps, size = frames_of(upload.data)
    assert (kind, n, fps, size) == ("gif", 12, 25.0, (64, 48))
    [embed] = follow_up.json["embeds"]
    assert clip_field(follow_up) == "12 frames at 25 fps (0.5 s)"
    assert embed["image"]["url"] == f"attachment://{upload.filename}"  # a GIF shows in the card
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert re.fullmatch(r"\d+\.\d s on cpu", fields["Time"])
    # Progress counted in frames: some edit showed 'frame k/12' (4 frames a batch).
    edits = [c.content for c in fake.find("PATCH", payload["token"])]
    assert any(re.search(r"· frame (4|8|12)/12 \(job", e) for e in edits), edits
    # And the frames are the method's: the toy inverts every one.
    from engine.video import decode_clip

    out = decode_clip(upload.data, max_bytes=1 << 30, max_pixels=10**8, max_frames=100,
                      max_seconds=60.0)
    assert out.frames[5].getpixel((30, 30)) == ImageOps.invert(frames[5]).getpixel((30, 30))
    from stylebot.results import read_settings  # what "Stylebot info" reads from the file

    assert read_settings(upload.data)["method"] == "toyclip"


async def test_an_mp4_comes_back_as_an_mp4_playing_from_the_attachment(bot, fake):
    content = fake.attachment(mp4_bytes(flat_frames(6), fps=12), "walk.mp4", "video/mp4")
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toyclip"}))
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    [upload] = follow_up.files
    assert upload.filename.endswith(".mp4")
    assert frames_of(upload.data)[:3] == ("mp4", 6, 12.0)
    assert clip_field(follow_up) == "6 frames at 12 fps (0.5 s)"
    assert "image" not in follow_up.json["embeds"][0]  # an embed cannot play a video
    from stylebot.results import read_settings

    assert read_settings(upload.data)["method"] == "toyclip"


async def test_a_tiny_upload_limit_lowers_fps_then_size_and_says_so(bot, fake):
    frames = noisy_frames(12)  # 160x120 at 25 fps, noise: about 250 KB as a GIF
    limit = 60 * 1024
    content = fake.attachment(gif_bytes(frames), "noise.gif", "image/gif")
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toyclip"},
                                   upload_limit=limit))
    follow_up = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    [upload] = follow_up.files
    assert len(upload.data) <= limit
    kind, n, fps, size = frames_of(upload.data)
    assert kind == "gif" and n == 4 and fps == pytest.approx(8.33, abs=0.01)  # every 3rd frame
    assert max(size) < 160
    text = clip_field(follow_up)
    assert re.fullmatch(rf"4 frames at 8\.33 fps \(0\.5 s\); lowered to 8\.33 fps and {max(size)} px"
                        rf"( and \d+ colours)? to fit Discord's 60 KB", text), text


async def test_a_clip_that_cannot_fit_at_all_gets_one_line(bot, fake):
    content = fake.attachment(gif_bytes(noisy_frames(12)), "noise.gif", "image/gif")
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toyclip"},
                                   upload_limit=4_000))
    text = await last_edit(fake, payload, "⚠️")
    assert re.fullmatch(r"⚠️ The result is \d+ KB even at 8\.33 fps, 96 px and 16 colours, over "
                        r"Discord's 4 KB limit; try a shorter clip or a smaller size\.", text), text
    assert not fake.find("POST", f"/webhooks/{APP_ID}/{payload['token']}")


async def test_gatys_refuses_a_clip_in_one_line_naming_those_that_take_it(bot, fake):
    content = fake.attachment(gif_bytes(flat_frames(3)), "a.gif", "image/gif")
    style = fake.attachment(png_bytes(), "style.png")
    payload = send(bot, fake.slash("stylize", {"content": content, "style": style,
                                               "method": "gatys"}))
    text = await last_edit(fake, payload, "⚠️")
    assert text.startswith("⚠️ Method 'gatys' takes still images only; for an animation or video "
                           "use fast, adain, hub")


async def test_an_over_long_clip_is_refused_naming_the_limit(bot, fake):
    content = fake.attachment(gif_bytes(flat_frames(12), duration_ms=100), "long.gif", "image/gif")
    payload = send(bot, fake.slash("stylize", {"content": content, "method": "toyclip"}))
    text = await last_edit(fake, payload, "⚠️")
    assert text == "⚠️ The content clip lasts 1.1 s; the limit is 1 s."


async def test_a_video_the_engine_cannot_read_is_refused_before_download(bot, fake):
    avi = fake.attachment(b"RIFF....AVI ", "old.avi", "video/x-msvideo")
    payload = send(bot, fake.slash("stylize", {"content": avi, "method": "toyclip"}))
    assert await ephemeral_refusal(fake, payload) == (
        "⚠️ The content image 'old.avi' is a video/x-msvideo file; attach an image or a clip "
        "(PNG, JPEG, WebP, GIF, BMP or TIFF; animated GIF, WebP or PNG; or a short MP4, WebM "
        "or MOV).")
    video_style = fake.attachment(mp4_bytes(flat_frames(2)), "s.mp4", "video/mp4")
    payload = send(bot, fake.slash("stylize", {"content": fake.attachment(png_bytes(), "a.png"),
                                               "style": video_style, "method": "toystyle"}))
    assert await ephemeral_refusal(fake, payload) == (
        "⚠️ The style image 's.mp4' is a video/mp4 file; attach an image "
        "(PNG, JPEG, WebP, GIF, BMP or TIFF).")
    assert fake.downloads == []
