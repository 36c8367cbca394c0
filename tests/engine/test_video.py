"""Clips (animated GIF/WebP/APNG, MP4/WebM/MOV): decoding under limits, the feed-forward
methods on every frame, smoothing, and the same kind back; every clip generated here."""

from __future__ import annotations

import io
import json
import threading
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from engine.engine import StyleEngine
from engine.errors import ImageError, JobCancelled, UserError
from engine.request import ImageUpload, Requester, StyleRequest
from engine.samples import sample_content, sample_style
from engine.video import decode_clip, encode_clip, flicker_ratio, is_clip

av = pytest.importorskip("av")

LIMITS = dict(max_bytes=20 * 2**20, max_pixels=40_000_000, max_frames=300, max_seconds=20.0)


def moving_frames(n: int = 6, size: tuple[int, int] = (64, 48), noise: float = 6.0,
                  seed: int = 0) -> list[Image.Image]:
    """A sample picture with a square sliding across it and a little sensor noise per frame."""
    rng = np.random.default_rng(seed)
    base = np.asarray(sample_content(max(size)).resize(size), dtype=np.float32)
    frames = []
    for i in range(n):
        frame = base.copy()
        x = 4 + 3 * i
        frame[10:22, x:x + 12] = (240, 40, 40)
        frame += rng.normal(0, noise, frame.shape)
        frames.append(Image.fromarray(frame.clip(0, 255).astype(np.uint8), "RGB"))
    return frames


def animation_bytes(frames, fmt="GIF", durations=None, loop=0) -> bytes:
    buffer = io.BytesIO()
    params = {"save_all": True, "append_images": frames[1:],
              "duration": durations or [100] * len(frames)}
    if loop is not None:
        params["loop"] = loop
    frames[0].save(buffer, format=fmt, **params)
    return buffer.getvalue()


def video_bytes(frames, fmt="mp4", fps=12, audio=True) -> bytes:
    """An H.264 (VP9 for WebM) clip, with a sine tone as AAC (Opus) audio when asked."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as out:
        stream = out.add_stream("libvpx-vp9" if fmt == "webm" else "libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        if audio:
            sound = out.add_stream("libopus" if fmt == "webm" else "aac", rate=48000)
            sound.layout = "mono"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio:
            seconds = len(frames) / fps
            t = np.arange(int(48000 * seconds)) / 48000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            samples = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            samples.sample_rate, samples.pts, samples.time_base = 48000, 0, Fraction(1, 48000)
            for packet in sound.encode(samples):
                out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return buffer.getvalue()


def streams_of(data: bytes) -> tuple[int, str, bool, float]:
    """Frames, video codec, whether there is audio, fps of an encoded video."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        n = sum(1 for _ in container.decode(stream))
        return n, stream.codec_context.name, bool(container.streams.audio), float(stream.average_rate)


# -- decoding ----------------------------------------------------------------------------


def test_clip_gif_decodes_every_frame_with_durations_and_loop():
    data = animation_bytes(moving_frames(5), durations=[40, 80, 120, 40, 200], loop=3)
    assert is_clip(data)
    clip = decode_clip(data, **LIMITS, fit=32)
    assert len(clip.frames) == 5 and clip.durations_ms == [40, 80, 120, 40, 200]
    assert clip.loop == 3 and clip.kind == "gif" and clip.size == (32, 24)  # decoded to fit


@pytest.mark.parametrize("fmt, kind", [("WEBP", "webp"), ("PNG", "png")])
def test_clip_animated_webp_and_apng_decode(fmt, kind):
    clip = decode_clip(animation_bytes(moving_frames(4), fmt=fmt, durations=[50] * 4), **LIMITS)
    assert (len(clip.frames), clip.kind, clip.durations_ms) == (4, kind, [50] * 4)


@pytest.mark.parametrize("fmt", ["mp4", "webm", "mov"])
def test_video_decodes_to_frames_keeping_audio(fmt):
    data = video_bytes(moving_frames(8), fmt=fmt)
    assert is_clip(data)
    clip = decode_clip(data, **LIMITS, fit=32)
    assert len(clip.frames) == 8 and clip.fps == pytest.approx(12)
    assert clip.kind == fmt and clip.audio == data and clip.size == (32, 24)


def test_clip_stills_stay_stills():
    still = io.BytesIO()
    moving_frames(1)[0].save(still, format="PNG")
    assert not is_clip(still.getvalue())
    assert not is_clip(animation_bytes(moving_frames(1)))  # a one-frame GIF is a picture
    assert not is_clip(b"not an image at all")


def test_clip_too_many_frames_or_too_long_is_refused_in_one_line():
    gif = animation_bytes(moving_frames(6), durations=[1000] * 6)
    with pytest.raises(ImageError, match=r"^The content clip has 6 frames; the limit is 5\.$"):
        decode_clip(gif, **{**LIMITS, "max_frames": 5})
    with pytest.raises(ImageError, match=r"^The content clip lasts 5\.0 s; the limit is 4 s\.$"):
        decode_clip(gif, **{**LIMITS, "max_seconds": 4})
    mp4 = video_bytes(moving_frames(12), audio=False)
    with pytest.raises(ImageError, match="has 12 frames; the limit is 10"):
        decode_clip(mp4, **{**LIMITS, "max_frames": 10})
    with pytest.raises(ImageError, match="lasts 1.0 s; the limit is 0.5 s"):
        decode_clip(mp4, **{**LIMITS, "max_seconds": 0.5})
    with pytest.raises(ImageError, match="limit is 0.001 megapixels"):
        decode_clip(gif, **{**LIMITS, "max_pixels": 1000})


# -- through the engine ------------------------------------------------------------------


@pytest.fixture
def engine(settings, weights):
    return StyleEngine(settings, weights, device="cpu")


def png(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def request(data: bytes, method: str, styles=(), **options) -> StyleRequest:
    return StyleRequest(method=method, content=ImageUpload(data, "clip"), requester=Requester("test", "u"),
                        styles=[ImageUpload(png(s), "style.png") for s in styles], options=options)


def test_clip_refused_by_still_only_methods_naming_those_that_take_it(engine):
    gif = animation_bytes(moving_frames(3))
    with pytest.raises(UserError, match=r"^Method 'gatys' takes still images only; for an "
                                        r"animation or video use fast, adain, hub\.$"):
        engine.prepare(request(gif, "gatys", styles=[sample_style(64)]))
    with pytest.raises(UserError, match="Method 'sd' takes still images only"):
        engine.prepare(StyleRequest(method="sd", content=ImageUpload(gif), prompt="a cat",
                                    requester=Requester("test", "u")))


def test_clip_limits_come_from_engine_settings(settings, weights):
    engine = StyleEngine(settings.model_copy(update={"max_frames": 2}), weights, device="cpu")
    with pytest.raises(ImageError, match="has 3 frames; the limit is 2"):
        engine.prepare(request(animation_bytes(moving_frames(3)), "fast"))


@pytest.mark.parametrize("method, styles", [("fast", ()), ("hub", (sample_style(96),))])
def test_clip_frame_zero_equals_the_still_result(engine, make_context, method, styles):
    gif = animation_bytes(moving_frames(5))
    job = engine.prepare(request(gif, method, styles=styles, size=64))
    clip = engine.execute([job], make_context())[0]
    assert len(clip.frames) == 5 and clip.durations_ms == [100] * 5 and clip.loop == 0
    still_job = engine.prepare(request(png(job.input.clip.frames[0]), method, styles=styles, size=64))
    still = engine.execute([still_job], make_context())[0]
    diff = np.abs(np.asarray(clip.frames[0], np.float32) - np.asarray(still, np.float32)).mean() / 255
    assert diff < 0.01


def test_clip_hub_reads_the_style_once_per_job(engine, make_context, monkeypatch):
    from engine.methods.hub import HubMethod

    calls = []
    original = HubMethod._style_vectors
    monkeypatch.setattr(HubMethod, "_style_vectors",
                        staticmethod(lambda *a: calls.append(1) or original(*a)))
    job = engine.prepare(request(animation_bytes(moving_frames(9)), "hub", styles=[sample_style(64)],
                                 size=64, strength=0.7))
    clip = engine.execute([job], make_context())[0]
    assert len(clip.frames) == 9 and len(calls) == 1  # 9 frames, max_batch 4: 3 passes, 1 style


def test_clip_progress_per_frame_and_cancel_between_frames(engine, make_context):
    job = engine.prepare(request(animation_bytes(moving_frames(9)), "fast", size=64))
    ctx = make_context()
    engine.execute([job], ctx)
    stages = [stage for _, stage in ctx.progress_calls]
    assert {"frame 4/9", "frame 8/9", "frame 9/9"} <= set(stages)
    fractions = [f for f, _ in ctx.progress_calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    cancel = threading.Event()
    ctx = make_context(cancel_event=cancel)
    ctx._on_progress = lambda f, stage, preview: cancel.set() if stage == "frame 4/9" else None
    with pytest.raises(JobCancelled):
        engine.execute([job], ctx)


def test_clip_mp4_comes_back_as_h264_with_audio(engine, make_context):
    data = video_bytes(moving_frames(10), fps=12)
    job = engine.prepare(request(data, "fast", size=64))
    clip = engine.execute([job], make_context())[0]
    out, kind = encode_clip(clip)
    assert kind == "mp4"
    frames, codec, has_audio, fps = streams_of(out)
    assert (frames, codec, has_audio, fps) == (10, "h264", True, pytest.approx(12))


def test_clip_gif_round_trip_keeps_durations_and_loop(engine, make_context):
    gif = animation_bytes(moving_frames(4), durations=[60, 60, 200, 90], loop=2)
    clip = engine.execute([engine.prepare(request(gif, "fast", size=64))], make_context())[0]
    again = decode_clip(encode_clip(clip, "gif")[0], **LIMITS)
    assert again.durations_ms == [60, 60, 200, 90] and again.loop == 2 and len(again.frames) == 4


def test_clip_smooth_reduces_flicker(engine, make_context):
    gif = animation_bytes(moving_frames(8, size=(96, 72), noise=8), fmt="PNG")  # lossless frames
    ratios = []
    for smooth in (0.0, 0.8):
        job = engine.prepare(request(gif, "fast", size=96, smooth=smooth))
        clip = engine.execute([job], make_context())[0]
        ratios.append(flicker_ratio(job.input.clip.frames, clip.frames))
    assert ratios[1] < 0.8 * ratios[0]


def test_video_cli_writes_the_container_its_suffix_names(tmp_path, monkeypatch, capsys):
    from stylebot.cli import main

    monkeypatch.setenv("STYLEBOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STYLEBOT_DEVICE", "cpu")
    monkeypatch.setenv("STYLEBOT_ALLOW_DOWNLOADS", "false")
    (tmp_path / "clip.gif").write_bytes(animation_bytes(moving_frames(4), durations=[70] * 4))
    code = main(["stylize", str(tmp_path / "clip.gif"), "--method", "fast", "--size", "64",
                 "-o", str(tmp_path / "out.gif"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "4 frames at" in out
    result = decode_clip((tmp_path / "out.gif").read_bytes(), **LIMITS)
    assert len(result.frames) == 4 and result.durations_ms == [70] * 4
    code = main(["stylize", str(tmp_path / "clip.gif"), "--method", "fast", "--size", "64",
                 "-o", str(tmp_path / "out.mp4"), "--quiet"])
    assert code == 0 and streams_of((tmp_path / "out.mp4").read_bytes())[:2] == (4, "h264")
    capsys.readouterr()
    for name in ("out.gif", "out.mp4"):  # a clip result carries its settings as a still does
        assert main(["info", str(tmp_path / name), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["method"] == "fast" and info["options"]["size"] == 64, name


@pytest.mark.parametrize("fmt", ["gif", "webp", "png", "mp4", "webm", "mov"])
def test_clip_results_carry_their_settings_in_every_container(fmt):
    from engine.resultinfo import embedded_text

    clip = decode_clip(animation_bytes(moving_frames(3)), **LIMITS)
    settings = {"stylebot": "0.1.0", "method": "hub", "options": {"strength": 0.5}, "seed": 7}
    data, written = encode_clip(clip, fmt, settings)
    assert json.loads(embedded_text(data)) == settings, written
    assert embedded_text(encode_clip(clip, fmt)[0]) is None  # nothing unless asked


@pytest.mark.parametrize("data", [b"this is not an image at all", b"\x89PNG\r\n\x1a\n broken",
                                  b"\x89PNG\r\n\x1a\n" + b"\0" * 64])
def test_clip_damaged_stills_and_text_are_not_clips(data):
    """FFmpeg opens a damaged PNG as a one-stream 'video' (png_pipe): it stays a damaged still,
    refused by the image decoder with the still's own message."""
    from engine.video import is_clip

    assert not is_clip(data)
