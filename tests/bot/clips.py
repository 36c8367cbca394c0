"""Clips for the front-end tests, generated here (no downloads), and a toy method that takes them.

``noisy_frames`` makes frames that compress badly (noise over a moving square), so a small
upload limit really does force the fitting to lower fps and size. ``ToyClip`` is the engine's
toy inverter with ``takes_clips``: every frame goes through the engine's real ``run_clip``
(batches of ``max_batch``, progress 'frame 4/12', cancellation between batches).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine import methods
from tests.engine.toy_methods import ToyInvert


class ToyClip(ToyInvert):
    name = "toyclip"
    title = "Toy clip inverter"
    summary = "Inverts every frame of a clip; used by the front-end clip tests."
    takes_clips = True


@pytest.fixture
def clip_toys(monkeypatch):
    """``toyclip`` in the real registry, beside whatever toys the folder's fixtures add."""
    monkeypatch.setitem(methods.METHOD_PATHS, "toyclip", "tests.bot.clips:ToyClip")
    methods.get_method.cache_clear()
    methods.loadable_methods.cache_clear()
    yield
    methods.get_method.cache_clear()
    methods.loadable_methods.cache_clear()


def noisy_frames(n: int = 12, size: tuple[int, int] = (160, 120), seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        pixels[20:60, 10 + 8 * i:50 + 8 * i] = (240, 40, 40)
        frames.append(Image.fromarray(pixels, "RGB"))
    return frames


def flat_frames(n: int = 6, size: tuple[int, int] = (64, 48)) -> list[Image.Image]:
    """Frames that compress to almost nothing: a square sliding over a flat colour."""
    frames = []
    for i in range(n):
        frame = Image.new("RGB", size, (30, 90, 200))
        frame.paste((250, 250, 20), (4 + 4 * i, 10, 16 + 4 * i, 22))
        frames.append(frame)
    return frames


def gif_bytes(frames: list[Image.Image], duration_ms: int = 40) -> bytes:
    """An animated GIF, 25 fps by default, looping forever."""
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:],
                   duration=[duration_ms] * len(frames), loop=0)
    return buffer.getvalue()


def mp4_bytes(frames: list[Image.Image], fps: int = 24) -> bytes:
    """An H.264 MP4 without audio."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def frames_of(data: bytes) -> tuple[str, int, float, tuple[int, int]]:
    """(container, frames, fps, size) of an encoded clip, read back with the engine's decoder."""
    from engine.video import decode_clip

    clip = decode_clip(data, max_bytes=1 << 30, max_pixels=10**8, max_frames=10**4,
                       max_seconds=3600.0)
    return clip.kind, len(clip.frames), clip.fps, clip.size
