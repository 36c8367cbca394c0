"""The settings a result carries inside its own file, so they travel with the image.

What goes in is built from the job's ``ResultMeta`` only (method, options, seed, prompt,
size and the Stylebot version): never who asked, a preset's name or its style images, or
a path on this machine. PNG (and APNG) keeps it in a text chunk (key ``stylebot``), JPEG
and WebP in EXIF UserComment, GIF in its comment, MP4, MOV and WebM in the container's
``comment`` tag; the JSON is the same in every case.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import ResultMeta

KEY = "stylebot"  # the PNG text chunk's keyword
MAX_TEXT = 64 * 1024  # larger metadata is not ours
_EXIF_ASCII = b"ASCII\x00\x00\x00"  # the UserComment character-code prefix
_GIF_PREFIX = KEY.encode() + b":"
VIDEO_TAG = "comment"  # the container metadata tag of MP4, MOV and WebM results
# A value that names a file on this machine (an operator's model folder): never written out.
_PATH = re.compile(r"^(/|~|\.\.?[/\\]|[A-Za-z]:[/\\]|\\\\)|[\\]")


@lru_cache(maxsize=1)
def stylebot_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("stylebot")
    except metadata.PackageNotFoundError:  # a source tree without an install
        return "unknown"


def is_path(value: Any) -> bool:
    return isinstance(value, str) and bool(_PATH.search(value))


def settings_of(meta: "ResultMeta") -> dict[str, Any]:
    """The settings written into a result: plain JSON values, nothing private."""
    options = {k: v for k, v in meta.options.items()
               if k != "seed" and isinstance(v, (str, int, float, bool)) and not is_path(v)}
    out: dict[str, Any] = {"stylebot": stylebot_version(), "method": meta.method, "options": options}
    if meta.seed is not None and "seed" in meta.options:  # methods without one draw one unused
        out["seed"] = int(meta.seed)
    if meta.prompt:
        out["prompt"] = meta.prompt
    if meta.size and meta.size[0]:
        out["size"] = [int(meta.size[0]), int(meta.size[1])]
    return out


def save_params(fmt: str, settings: dict[str, Any] | None) -> dict[str, Any]:
    """Pillow ``save`` keywords that embed ``settings`` in a file of format ``fmt``."""
    if settings is None:
        return {}
    text = json.dumps(settings, ensure_ascii=True, separators=(",", ":"))
    fmt = fmt.upper()
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text(KEY, text)
        return {"pnginfo": info}
    if fmt in ("JPEG", "WEBP"):
        from PIL import ExifTags, Image

        exif = Image.Exif()
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = _EXIF_ASCII + text.encode()
        return {"exif": exif.tobytes()}
    if fmt == "GIF":
        return {"comment": _GIF_PREFIX + text.encode()}
    return {}


def video_comment(settings: dict[str, Any]) -> str:
    """The container ``comment`` of a video result: the GIF comment's text."""
    return _GIF_PREFIX.decode() + json.dumps(settings, ensure_ascii=True, separators=(",", ":"))


def _video_text(data: bytes) -> str | None:
    """The settings' JSON in a video container's comment; ``ValueError`` when not a video."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            tags = {key.lower(): value for key, value in container.metadata.items()}  # WebM: COMMENT
            comment = str(tags.get(VIDEO_TAG) or "")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise ValueError("not an image or video") from exc
    prefix = _GIF_PREFIX.decode()
    return comment[len(prefix):] if comment.startswith(prefix) else None


def embedded_text(data: bytes) -> str | None:
    """The settings' JSON text inside an image or video file, unparsed; None when it has none.

    Reads headers and metadata only, never the pixels. ``ValueError`` when the bytes are
    neither an image nor a video.
    """
    from PIL import ExifTags, Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            if img.format == "PNG":
                raw: Any = img.info.get(KEY)
            elif img.format == "GIF":
                comment = img.info.get("comment") or b""
                raw = comment[len(_GIF_PREFIX):] if comment.startswith(_GIF_PREFIX) else None
            else:
                comment = img.getexif().get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.UserComment)
                raw = None
                if isinstance(comment, bytes) and comment.startswith(_EXIF_ASCII):
                    raw = comment[len(_EXIF_ASCII):]
                elif isinstance(comment, str) and comment.lstrip().startswith("{"):
                    raw = comment
    except UnidentifiedImageError:
        raw = _video_text(data)
    except (OSError, SyntaxError, EOFError) as exc:
        raise ValueError("not an image") from exc
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return str(raw)[: MAX_TEXT + 1]
