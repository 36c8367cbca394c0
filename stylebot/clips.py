"""Which uploads may be clips, and how a clip result is named and described, on every platform.

Chat platforms label uploads with a MIME type before a byte is downloaded. A content upload
may be an image (animated GIF, WebP and APNG are images) or one of the short videos the
engine decodes (``engine.video``); style images and masks stay images. The result goes back
as the kind it came in, so its file name and type follow that kind.
"""

from __future__ import annotations

from engine.images import FORMATS_HINT

# What browsers, Discord and Slack call the video containers engine/video.py reads.
VIDEO_TYPES = frozenset({"video/mp4", "video/webm", "video/quicktime"})
# Slack's own ``filetype`` names, for its file pickers.
VIDEO_FILETYPES = ("mp4", "mov", "webm")
CONTENT_HINT = f"{FORMATS_HINT}; animated GIF, WebP or PNG; or a short MP4, WebM or MOV"
MIME_BY_KIND = {"gif": "image/gif", "webp": "image/webp", "png": "image/apng",
                "mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}
VIDEO_KINDS = frozenset({"mp4", "mov", "webm"})


def base_type(content_type: str | None) -> str:
    """``image/gif; charset=x`` -> ``image/gif``; '' when there is none."""
    return (content_type or "").split(";")[0].strip().lower()


def is_video_type(content_type: str | None) -> bool:
    return base_type(content_type) in VIDEO_TYPES


def is_content_type(content_type: str | None) -> bool:
    """Whether an upload marked ``content_type`` may be restyled: any image, or a video the
    engine reads. Whether it really is one is the engine's decoding to say."""
    kind = base_type(content_type)
    return kind.startswith("image/") or kind in VIDEO_TYPES


def clip_facts(frames: int, fps: float, seconds: float) -> str:
    """The frames line of a clip result: '24 frames at 12 fps (2.0 s)'."""
    return f"{frames} frames at {fps:.3g} fps ({seconds:.1f} s)"
