"""Clips: animated GIF/WebP/APNG and short videos, decoded to frames and encoded back.

A clip is decoded frame by frame straight to the job's working size, under the same byte
and pixel limits as a still plus the server's frame-count and duration limits. It goes
back out as the same kind it came in (GIF stays GIF with its frame durations and loop
count; MP4 stays MP4, H.264 where the encoder exists, with the source's audio copied).
Animated images go through Pillow; videos through PyAV (imported only when needed).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import TYPE_CHECKING

from PIL import Image, ImageSequence, UnidentifiedImageError

from . import resultinfo
from .errors import ImageError
from .images import fitted_size, megabytes, to_rgb

if TYPE_CHECKING:
    import numpy as np

ANIMATED_FORMATS = {"GIF": "gif", "WEBP": "webp", "PNG": "png"}  # Pillow format -> extension
VIDEO_FORMATS = ("mp4", "mov", "webm")
CLIP_FORMATS = ("gif", "webp", "png", "apng", *VIDEO_FORMATS)
# Video codecs by container, best first: H.264 where the encoder exists.
VIDEO_CODECS = {"mp4": ("libx264", "h264", "mpeg4"), "mov": ("libx264", "h264", "mpeg4"),
                "webm": ("libvpx-vp9",)}


@dataclass
class Clip:
    """Frames of one clip with what it takes to play them back as they came.

    ``durations_ms`` has one entry per frame; ``loop`` is the animation's loop count (0:
    forever; None: the source said nothing, i.e. play once); ``audio`` is the source file's
    bytes when it has an audio stream, remuxed into a video result untouched.
    """

    frames: list[Image.Image]
    durations_ms: list[int]
    kind: str  # the source's extension: gif, webp, png, mp4, mov, webm
    fps: float
    loop: int | None = None
    audio: bytes | None = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].size

    @property
    def seconds(self) -> float:
        return sum(self.durations_ms) / 1000

    def with_frames(self, frames: list[Image.Image]) -> "Clip":
        return replace(self, frames=list(frames))


VIDEO_CONTAINERS = {"mov", "mp4", "m4a", "3gp", "matroska", "webm"}  # FFmpeg's demuxer names


def is_clip(data: bytes) -> bool:
    """True for an animation of more than one frame or a video; a still stays a still."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            return bool(getattr(img, "is_animated", False)) and img.format in ANIMATED_FORMATS
    except UnidentifiedImageError:
        return _video_stream(data) is not None
    except Exception:  # noqa: BLE001 - a damaged still is refused by decode_image
        return False


def _video_stream(data: bytes):
    """The first video stream's container, or None when PyAV cannot read ``data``."""
    try:
        import av
    except ImportError:
        return None
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except Exception:  # noqa: BLE001 - anything PyAV cannot open is not a video
        return None
    # FFmpeg opens almost anything with a stream called "video" (a damaged PNG through its
    # png_pipe demuxer, ANSI text as tty): only the video containers we take count.
    formats = set(container.format.name.split(","))
    if not container.streams.video or not formats & VIDEO_CONTAINERS:
        container.close()
        return None
    return container


def decode_clip(data: bytes, *, max_bytes: int, max_pixels: int, max_frames: int,
                max_seconds: float, fit: int | None = None, what: str = "content clip") -> Clip:
    """Decode an animation or video into RGB frames fitted to ``fit``, or raise ``ImageError``."""
    if len(data) > max_bytes:
        raise ImageError(f"The {what} is {megabytes(len(data))}; the limit is {megabytes(max_bytes)}.")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        return _decode_video(data, max_pixels, max_frames, max_seconds, fit, what)
    return _decode_animation(img, max_pixels, max_frames, max_seconds, fit, what)


def _check_limits(what: str, size: tuple[int, int], n_frames: int | None, seconds: float | None,
                  max_pixels: int, max_frames: int, max_seconds: float) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageError(f"The {what} is {width}x{height} pixels; the limit is "
                         f"{max_pixels / 1e6:.3g} megapixels.")
    if n_frames is not None and n_frames > max_frames:
        raise ImageError(f"The {what} has {n_frames} frames; the limit is {max_frames}.")
    if seconds is not None and seconds > max_seconds:
        raise ImageError(f"The {what} lasts {seconds:.1f} s; the limit is {max_seconds:g} s.")


def _decode_animation(img: Image.Image, max_pixels: int, max_frames: int, max_seconds: float,
                      fit: int | None, what: str) -> Clip:
    n_frames = getattr(img, "n_frames", 1)
    _check_limits(what, img.size, n_frames, None, max_pixels, max_frames, max_seconds)
    target = fitted_size(img.size, fit) if fit is not None else None
    frames, durations = [], []
    try:
        for frame in ImageSequence.Iterator(img):
            frame.load()  # WebP sets the frame's duration on load, not on seek
            durations.append(int(frame.info.get("duration") or 100))
            _check_limits(what, img.size, None, sum(durations) / 1000, max_pixels, max_frames,
                          max_seconds)
            rgb = to_rgb(frame.copy())
            frames.append(rgb.resize(target, Image.Resampling.LANCZOS) if target else rgb)
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageError(f"The {what} is truncated or damaged and cannot be read.") from None
    loop = img.info.get("loop")
    fps = len(frames) / (sum(durations) / 1000) if sum(durations) else 10.0
    return Clip(frames, durations, ANIMATED_FORMATS.get(img.format, "gif"), round(fps, 3),
                loop=None if loop is None else int(loop))


def _decode_video(data: bytes, max_pixels: int, max_frames: int, max_seconds: float,
                  fit: int | None, what: str) -> Clip:
    container = _video_stream(data)
    if container is None:
        from .images import FORMATS_HINT

        raise ImageError(f"The {what} is not an image or video Stylebot can read "
                         f"({FORMATS_HINT}; MP4, WebM or MOV).")
    with container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        seconds = (float(stream.duration * stream.time_base) if stream.duration
                   else container.duration / 1e6 if container.duration else None)
        size = (stream.codec_context.width, stream.codec_context.height)
        _check_limits(what, size, stream.frames or None, seconds, max_pixels, max_frames, max_seconds)
        target = fitted_size(size, fit) if fit is not None else None
        frames = []
        try:
            for frame in container.decode(stream):
                if len(frames) >= max_frames:
                    _check_limits(what, size, len(frames) + 1, None, max_pixels, max_frames, max_seconds)
                if target is not None:  # scaled by the decoder's swscale, not at full size first
                    frames.append(frame.to_image(width=target[0], height=target[1]))
                else:
                    frames.append(frame.to_image())
        except Exception as exc:  # noqa: BLE001 - PyAV raises its own FFmpegError family
            if isinstance(exc, ImageError):
                raise
            raise ImageError(f"The {what} is truncated or damaged and cannot be read.") from None
        has_audio = bool(container.streams.audio)
    if not frames:
        raise ImageError(f"The {what} has no frames.")
    _check_limits(what, size, None, len(frames) / fps, max_pixels, max_frames, max_seconds)
    kind = "webm" if data[:4] == b"\x1a\x45\xdf\xa3" else "mov" if b"qt  " in data[:32] else "mp4"
    duration = round(1000 / fps)
    return Clip([f.convert("RGB") for f in frames], [duration] * len(frames), kind, round(fps, 3),
                loop=None, audio=data if has_audio else None)


# -- encoding ---------------------------------------------------------------------------


def encode_clip(clip: Clip, fmt: str | None = None,
                settings: dict | None = None) -> tuple[bytes, str]:
    """``clip`` encoded as ``fmt`` (a file extension; default: the kind it came as), with
    ``settings`` (``resultinfo.settings_of``) inside the file as a still result has them."""
    fmt = (fmt or clip.kind).lower().lstrip(".")
    fmt = "png" if fmt == "apng" else fmt
    if fmt not in CLIP_FORMATS:
        raise ImageError(f"A clip can be written as {', '.join(CLIP_FORMATS)}, not '{fmt}'.")
    if fmt in VIDEO_FORMATS:
        return _encode_video(clip, fmt, settings), fmt
    buffer = io.BytesIO()
    params = {"save_all": True, "append_images": clip.frames[1:], "duration": clip.durations_ms}
    if clip.loop is not None or fmt != "gif":
        params["loop"] = clip.loop or 0
    if fmt == "webp":
        params["lossless"] = False
        params["quality"] = 90
    pil_format = {"gif": "GIF", "webp": "WEBP", "png": "PNG"}[fmt]
    params.update(resultinfo.save_params(pil_format, settings))
    clip.frames[0].save(buffer, format=pil_format, **params)
    return buffer.getvalue(), fmt


def _encode_video(clip: Clip, fmt: str, settings: dict | None = None) -> bytes:
    import av

    codec = next((c for c in VIDEO_CODECS[fmt] if c in av.codecs_available), None)
    if codec is None:
        raise ImageError(f"This server's FFmpeg has no encoder for {fmt.upper()}; try a GIF.")
    width, height = (s - s % 2 for s in clip.size)  # yuv420p needs even sides
    buffer = io.BytesIO()
    rate = Fraction(clip.fps).limit_denominator(1001)
    with av.open(buffer, mode="w", format={"mov": "mov", "webm": "webm"}.get(fmt, "mp4")) as out:
        if settings is not None:
            out.metadata[resultinfo.VIDEO_TAG] = resultinfo.video_comment(settings)
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        audio_in = _audio_source(clip, out)
        for frame in clip.frames:
            image = frame if frame.size == (width, height) else frame.crop((0, 0, width, height))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio_in is not None:
            source, in_stream, out_stream = audio_in
            with source:
                for packet in source.demux(in_stream):
                    if packet.dts is None:
                        continue
                    packet.stream = out_stream
                    out.mux(packet)
    return buffer.getvalue()


def _audio_source(clip: Clip, out):
    """(source container, its audio stream, the output's copy) to remux, or None."""
    if clip.audio is None:
        return None
    import av

    source = av.open(io.BytesIO(clip.audio), mode="r")
    if not source.streams.audio:
        source.close()
        return None
    in_stream = source.streams.audio[0]
    try:
        out_stream = out.add_stream_from_template(in_stream)
    except Exception:  # noqa: BLE001 - a codec this container cannot hold: the video goes without
        source.close()
        return None
    return source, in_stream, out_stream


# -- temporal stability -------------------------------------------------------------------

SMOOTH_CHANGE = 0.08  # mean colour change (0..1) of a pixel above which it counts as moving


def smooth_frames(inputs: list[Image.Image], outputs: list[Image.Image],
                  strength: float) -> list[Image.Image]:
    """Less flicker: where the input pixel barely changed since the last frame, keep
    ``strength`` of the previous smoothed output; where it moved, take the new output.

    Feed-forward networks turn small input changes (noise, compression) into large output
    changes, which is the flicker; a per-pixel blend gated by the input's own change damps
    that in still regions without dragging trails behind moving ones. Frame 0 is untouched.
    """
    import numpy as np

    if strength <= 0 or len(outputs) < 2:
        return outputs
    inputs = [i if i.size == o.size else i.resize(o.size) for i, o in zip(inputs, outputs)]
    smoothed = [outputs[0]]
    prev_out = np.asarray(outputs[0], dtype=np.float32)
    prev_in = np.asarray(inputs[0], dtype=np.float32)
    for inp, out in zip(inputs[1:], outputs[1:]):
        cur_in = np.asarray(inp, dtype=np.float32)
        cur_out = np.asarray(out, dtype=np.float32)
        change = np.abs(cur_in - prev_in).mean(axis=2, keepdims=True) / 255.0
        keep = strength * np.clip(1.0 - change / SMOOTH_CHANGE, 0.0, 1.0)
        prev_out = keep * prev_out + (1.0 - keep) * cur_out
        prev_in = cur_in
        smoothed.append(Image.fromarray((prev_out + 0.5).clip(0, 255).astype(np.uint8), "RGB"))
    return smoothed


def frame_change(frames: list[Image.Image]) -> float:
    """Mean absolute frame-to-frame change, 0..1: the flicker measure."""
    import numpy as np

    arrays: list[np.ndarray] = [np.asarray(f, dtype=np.float32) / 255.0 for f in frames]
    if len(arrays) < 2:
        return 0.0
    return float(np.mean([np.abs(b - a).mean() for a, b in zip(arrays, arrays[1:])]))


def flicker_ratio(inputs: list[Image.Image], outputs: list[Image.Image]) -> float:
    """The output's frame-to-frame change over the input's: 1 moves as much as the source."""
    base = frame_change(inputs)
    return frame_change(outputs) / base if base else 0.0
