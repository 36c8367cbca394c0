"""Clips on Slack: an MP4 or GIF shared in the channel comes back as the same kind with its
frames line, progress counted in frames, fitted to the Slack upload limit (saying so), and
every refusal one private line. Clips are generated here; ``toyclip`` runs the engine's run_clip."""

from __future__ import annotations

import re

import pytest

from bot.slack import render as blocks
from tests.bot.clips import clip_toys, flat_frames, frames_of, gif_bytes, mp4_bytes, noisy_frames
from tests.engine.conftest import png_bytes

pytestmark = pytest.mark.usefixtures("clip_toys")
assert clip_toys  # the fixture, imported for pytest to find


@pytest.fixture
def slack_settings(slack_settings):
    """The folder's settings, with clips limited to 1 s."""
    return slack_settings.model_copy(update={"max_video_s": 1.0})


def uploaded(fake) -> tuple[str, bytes]:
    """(file name, bytes) of the result shared in a conversation."""
    [shared] = [c for c in fake.called("files.completeUploadExternal") if c.args.get("channel_id")]
    file_id = shared.args["files"][0]["id"]
    name = next(c.args["filename"] for c in fake.called("files.getUploadURLExternal")
                if fake.files.get(file_id, {}).get("name") == c.args["filename"])
    return name, fake.uploads[file_id]


def context_of(summary) -> str:
    return summary["blocks"][1]["elements"][0]["text"]


async def test_an_mp4_comes_back_as_an_mp4_with_frames_fps_and_per_frame_progress(slack, fake):
    fake.share("C1", "U1", [fake.add_file(mp4_bytes(flat_frames(6), fps=12), "walk.mp4", "video/mp4")])
    status, _ = await slack.command("/stylize", "method=toyclip steps=2 delay=0.03")
    assert status == 200
    [summary] = await fake.delivered()
    name, data = uploaded(fake)
    assert name.endswith(".mp4") and frames_of(data)[:3] == ("mp4", 6, 12.0)
    assert "6 frames at 12 fps (0.5 s)" in context_of(summary)
    assert summary["text"].startswith("<@U1>'s clip (6 frames at 12 fps (0.5 s)), restyled with toyclip")
    [progress] = [m for m in fake.posted.values() if m is not summary]
    texts = [e["text"] for e in progress["edits"]]
    assert any(re.search(r"· frame 4/6 \(job", t) for t in texts), texts


async def test_a_small_slack_limit_lowers_fps_then_size_and_says_so(slack, fake):
    slack.bot.flow.upload_limit = 60 * 1024  # as slack_upload_mb sets it
    fake.share("C1", "U1", [fake.add_file(gif_bytes(noisy_frames(12)), "noise.gif", "image/gif")])
    await slack.command("/stylize", "method=toyclip")
    [summary] = await fake.delivered()
    name, data = uploaded(fake)
    kind, n, fps, size = frames_of(data)
    assert name.endswith(".gif") and kind == "gif" and len(data) <= 60 * 1024
    assert n == 4 and max(size) < 160
    assert re.search(rf"4 frames at 8\.33 fps \(0\.5 s\) · lowered to 8\.33 fps and {max(size)} px"
                     rf"( and \d+ colours)? to fit Slack's 60 KB", context_of(summary)), context_of(summary)


async def test_a_clip_that_cannot_fit_is_one_line_in_the_progress_message(slack, fake):
    slack.bot.flow.upload_limit = 3_000
    fake.share("C1", "U1", [fake.add_file(gif_bytes(noisy_frames(12)), "noise.gif", "image/gif")])
    await slack.command("/stylize", "method=toyclip")
    message = await fake.wait_for(lambda: next((m for m in fake.posted.values()
                                                if "did not finish" in (m.get("text") or "")), None),
                                  what="the failure")
    assert re.search(r"did not finish: The result is \d+ KB even at 8\.33 fps, 96 px and 16 "
                     r"colours, over Slack's 3 KB limit; try a shorter clip or a smaller size\.$",
                     message["text"]), message["text"]
    assert not [c for c in fake.called("files.completeUploadExternal") if c.args.get("channel_id")]


async def test_gatys_refuses_a_clip_privately_naming_the_methods_that_take_it(slack, fake):
    style = fake.add_file(png_bytes(), "style.png")
    clip = fake.add_file(gif_bytes(flat_frames(3)), "a.gif", "image/gif")
    fake.share("C1", "U1", [clip, style])
    await slack.command("/stylize", "method=gatys")  # the message's first file is the content
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert texts[0].startswith("⚠️ Method 'gatys' takes still images only; for an animation or "
                               "video use fast, adain, hub")


async def test_an_over_long_clip_is_refused_privately_naming_the_limit(slack, fake):
    long = gif_bytes(flat_frames(12), duration_ms=100)
    fake.share("C1", "U1", [fake.add_file(long, "long.gif", "image/gif")])
    await slack.command("/stylize", "method=toyclip")
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert texts == ["⚠️ The content clip lasts 1.1 s; the limit is 1 s."]
    assert not fake.called("chat.postMessage")


def test_the_modal_takes_clips_as_content_and_images_as_styles():
    from engine.methods import get_method

    modal = blocks.run_modal(methods=[get_method("adain")], method="adain", prompt=None,
                             strength=None, options_text="", presets=[], preset=None, meta="{}")
    types = {b["block_id"]: b["element"]["filetypes"] for b in modal["blocks"]
             if b.get("element", {}).get("type") == "file_input"}
    assert {"mp4", "mov", "webm", "gif"} <= set(types["content"])
    assert "mp4" not in types["styles"] and "gif" in types["styles"]
