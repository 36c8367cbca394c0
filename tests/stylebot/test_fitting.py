"""Fitting a clip result into an upload limit: fps first, then size, then GIF colours, each
said in the note; one line when nothing fits. Clips are generated here."""

from __future__ import annotations

import pytest

from engine.errors import UserError
from engine.video import Clip, decode_clip, encode_clip
from stylebot.fitting import MIN_FPS, MIN_SIDE, at_fps_step, fit_clip, size_text
from tests.bot.clips import flat_frames, noisy_frames

pytest.importorskip("av")


def clip_of(frames, kind="gif", fps=25.0) -> Clip:
    return Clip(list(frames), [round(1000 / fps)] * len(frames), kind, fps, loop=0)


def read(data: bytes) -> Clip:
    return decode_clip(data, max_bytes=1 << 30, max_pixels=10**8, max_frames=10**4,
                       max_seconds=3600.0)


def test_a_clip_within_the_limit_goes_out_as_it_came():
    clip = clip_of(flat_frames(6))
    fitted = fit_clip(clip, 10 * 2**20, "Discord")
    assert fitted.data == encode_clip(clip)[0] and fitted.lowered == () and fitted.note == ""
    assert (fitted.kind, fitted.mime, fitted.filename("r")) == ("gif", "image/gif", "r.gif")
    assert fitted.facts == "6 frames at 25 fps (0.2 s)"


def test_fps_is_lowered_first_keeping_the_clips_length():
    clip = clip_of(noisy_frames(12))
    full = len(encode_clip(clip)[0])
    fitted = fit_clip(clip, int(full * 0.6), "Discord")
    again = read(fitted.data)
    assert len(fitted.data) <= full * 0.6 and fitted.size == (160, 120)  # size untouched
    assert len(again.frames) == 6 and again.fps == pytest.approx(12.5)
    assert sum(again.durations_ms) == sum(clip.durations_ms)  # the same length, fewer frames
    assert fitted.note == f"lowered to 12.5 fps to fit Discord's {size_text(int(full * 0.6))}"


@pytest.mark.parametrize("kind", ["gif", "mp4", "webp"])
def test_size_goes_next_once_fps_is_at_its_floor(kind):
    clip = clip_of(noisy_frames(12), kind=kind)
    slowest = at_fps_step(clip, 3)  # 8.33 fps: the lowest step above MIN_FPS
    assert slowest.fps >= MIN_FPS > clip.fps / 4
    limit = int(len(encode_clip(slowest)[0]) * 0.7)
    fitted = fit_clip(clip, limit, "Slack")
    again = read(fitted.data)
    assert len(fitted.data) <= limit and again.kind == kind
    assert len(again.frames) == 4 and MIN_SIDE <= max(fitted.size) < 160
    assert fitted.lowered[:2] == ("8.33 fps", f"{max(fitted.size)} px")
    said = {2: "lowered to 8.33 fps and {1}", 3: "lowered to 8.33 fps, {1} and {2}"}
    assert fitted.note == (said[len(fitted.lowered)].format(*fitted.lowered)
                           + f" to fit Slack's {size_text(limit)}")


def test_gif_colours_go_last():
    clip = clip_of(noisy_frames(12, size=(96, 72)))  # already at MIN_SIDE: size cannot help
    slowest = at_fps_step(clip, 3)
    limit = int(len(encode_clip(slowest)[0]) * 0.8)
    fitted = fit_clip(clip, limit, "the playground")
    assert len(fitted.data) <= limit
    assert fitted.lowered[0] == "8.33 fps" and fitted.lowered[-1].endswith(" colours")
    assert "px" not in fitted.note


def test_nothing_fits_is_one_line_naming_the_limit():
    with pytest.raises(UserError) as caught:
        fit_clip(clip_of(noisy_frames(12)), 3000, "Discord")
    message = caught.value.message
    assert "\n" not in message
    assert message.endswith("even at 8.33 fps, 96 px and 16 colours, over Discord's 3 KB limit; "
                            "try a shorter clip or a smaller size.")


def test_a_clip_slower_than_the_floor_keeps_its_frames():
    clip = clip_of(noisy_frames(6), kind="mp4", fps=10.0)  # halving would go under 8 fps
    limit = int(len(encode_clip(clip)[0]) * 0.7)
    fitted = fit_clip(clip, limit, "Discord")
    assert fitted.frames == 6 and fitted.lowered[0].endswith(" px")


def test_size_text_reads_like_a_limit():
    assert [size_text(n) for n in (10 * 2**20, 2**19, 60 * 1024)] == ["10 MB", "0.5 MB", "60 KB"]


def test_a_long_clip_is_judged_on_samples_and_encoded_whole_once():
    clip = clip_of(noisy_frames(72), fps=24.0)  # 3 s; each rung is judged on 12 frames
    full = len(encode_clip(at_fps_step(clip, 2))[0])
    limit = int(full * 0.9)  # 12 fps is not enough, 8 fps is
    fitted = fit_clip(clip, limit, "Discord")
    assert len(fitted.data) <= limit and fitted.encodes == 1
    assert (fitted.fps, fitted.lowered, len(read(fitted.data).frames)) == (8.0, ("8 fps",), 24)


def test_when_the_sample_misjudges_the_whole_clip_the_next_rungs_correct_for_it():
    # The sampled runs (frames 0-3, 28-31, 56-59) are flat, everything between them noise:
    # the sample says the clip is tiny, the whole encode says otherwise.
    flat, noisy = flat_frames(60, size=(160, 120)), noisy_frames(60)
    sampled = set(range(4)) | set(range(28, 32)) | set(range(56, 60))
    clip = clip_of([flat[i] if i in sampled else noisy[i] for i in range(60)], kind="mp4")
    limit = len(encode_clip(clip)[0]) // 3
    fitted = fit_clip(clip, limit, "Slack")
    assert len(fitted.data) <= limit
    assert 2 <= fitted.encodes <= 4  # the first whole encode was over; the correction fixed it
