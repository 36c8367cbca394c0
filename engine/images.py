"""Safe, tolerant image decoding and the few conversions every method needs.

Uploads come from strangers: anything not a readable image, too large in bytes or in
pixels (decompression bombs), or truncated is refused with a message a person can act
on. What is accepted comes out as plain RGB with EXIF rotation applied.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from . import pngstream, resultinfo
from .errors import ImageError

if TYPE_CHECKING:
    import torch

    from .events import ResultMeta

FORMATS_HINT = "PNG, JPEG, WebP, GIF, BMP or TIFF"


def megabytes(n: float) -> str:
    """A byte count as people read upload limits: '2.5 MB'."""
    return f"{n / (1024 * 1024):.1f} MB"


def check_upload_size(n_bytes: int, max_bytes: int, what: str = "image") -> None:
    """Refuse before downloading or decoding when the declared size is already too big."""
    if n_bytes > max_bytes:
        raise ImageError(f"The {what} is {megabytes(n_bytes)}; the limit is {megabytes(max_bytes)}.")


REDUCING_GAP = 2.0  # as Image.thumbnail: box-reduce to at least twice the size, then Lanczos


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int, what: str = "image",
                 fit: int | None = None) -> Image.Image:
    """Decode untrusted bytes into an RGB image, or raise ``ImageError`` saying why not.

    With ``fit``, the image is shrunk (never enlarged) so its longest side is at most
    ``fit``, as ``fit_within`` would, but decoded straight to about that size where the
    format allows (JPEG's draft, PNG a stripe at a time): a 40-megapixel upload then never
    sits in memory at full size.
    """
    check_upload_size(len(data), max_bytes, what)
    if not data:
        raise ImageError(f"The {what} is empty.")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below gives the precise message; Pillow's hard error
            # (twice its own limit) remains a backstop for absurd sizes.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"The {what} is {width}x{height} pixels; the limit is "
                    f"{max_pixels / 1e6:.3g} megapixels.")
            target = fitted_size(img.size, fit) if fit is not None else None
            if target is not None:
                lay = pngstream.layout(data, img)
                if lay is not None:
                    return _decode_png_fitted(data, img, lay, target)
            return _decode_whole(img, target)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise ImageError(f"The {what} is not an image Stylebot can read ({FORMATS_HINT}).") from None
        raise ImageError(f"The {what} decompresses to too many pixels to be safe to open.") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageError(f"The {what} is truncated or damaged and cannot be read.") from None


def image_pixels(data: bytes) -> int:
    """Width x height from the header alone; 0 when unreadable (decoding says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            width, height = Image.open(io.BytesIO(data)).size
    except Exception:  # noqa: BLE001 - any failure is reported by decode_image
        return 0
    return width * height


def fitted_size(size: tuple[int, int], max_side: int) -> tuple[int, int] | None:
    """The size ``fit_within`` shrinks to, or None when the image already fits."""
    width, height = size
    if max(width, height) <= max_side:
        return None
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decode_whole(img: Image.Image, target: tuple[int, int] | None) -> Image.Image:
    """Any format: JPEG drafted (DCT-scaled) towards ``target``, others decoded whole, then
    upright, RGB and resized; the full-size buffer is dropped as soon as it is resized."""
    if getattr(img, "is_animated", False):
        img.seek(0)  # animated GIF/WebP/APNG: use the first frame
    if target is not None and img.format == "JPEG":
        img.draft(None, (int(target[0] * REDUCING_GAP), int(target[1] * REDUCING_GAP)))
    img.load()
    if target is not None and img.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):
        target = (target[1], target[0])  # rotated a quarter turn on display
    img = to_rgb(ImageOps.exif_transpose(img))
    if target is not None:
        img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    return img


def _decode_png_fitted(data: bytes, img: Image.Image, lay: "pngstream.Layout",
                       target: tuple[int, int]) -> Image.Image:
    """A PNG fitted to ``target``: what ``_decode_whole`` gives, a stripe at a time."""
    factor = (int(lay.width / target[0] / REDUCING_GAP) or 1, int(lay.height / target[1] / REDUCING_GAP) or 1)
    reduced, exif = pngstream.decode_reduced(data, img, lay, factor, to_rgb)
    box = (0, 0, lay.width / factor[0], lay.height / factor[1])
    out = reduced.resize(target, Image.Resampling.LANCZOS, box=box)
    del reduced
    # EXIF rotation, read where Pillow reads it: an eXIf chunk (before or after the
    # pixels) or XMP.
    for key in ("exif", "xmp", "XML:com.adobe.xmp"):
        if key in img.info:
            out.info[key] = img.info[key]
    if exif is not None:
        out.info["exif"] = b"Exif\x00\x00" + exif
    return ImageOps.exif_transpose(out)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited over white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale the actual range into 0..255.
        lo, hi = img.getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 1.0
        img = img.point(lambda v: (v - lo) * scale).convert("L")
    elif img.mode == "F":
        lo, hi = img.getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 1.0
        img = img.point(lambda v: (v - lo) * scale).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "La", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return img


def fit_within(img: Image.Image, max_side: int) -> Image.Image:
    """Shrink (never enlarge) so the longest side is at most ``max_side``, keeping aspect."""
    size = fitted_size(img.size, max_side)
    return img if size is None else img.resize(size, Image.Resampling.LANCZOS)


def resize_to_side(img: Image.Image, side: int) -> Image.Image:
    """Scale so the longest side is exactly ``side`` (up or down), keeping aspect."""
    width, height = img.size
    scale = side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img if size == img.size else img.resize(size, Image.Resampling.LANCZOS)


def to_tensor(img: Image.Image, device=None) -> "torch.Tensor":
    """RGB image -> float tensor [1, 3, H, W] in 0..1."""
    import numpy as np
    import torch

    array = np.asarray(to_rgb(img), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
    return tensor.to(device) if device is not None else tensor


def to_image(tensor: "torch.Tensor") -> Image.Image:
    """Float tensor [1, 3, H, W] or [3, H, W] in 0..1 -> RGB image (clamped)."""
    import numpy as np

    t = tensor.detach().float()
    if t.dim() == 4:
        t = t[0]
    array = (t.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array, "RGB")


def preserve_color(content: Image.Image, styled: Image.Image) -> Image.Image:
    """Luminance-only transfer: the styled image's brightness with the content's colours.

    Gatys et al. 2016 ("Preserving colour in neural artistic style transfer"), YCbCr variant.
    """
    content = content.resize(styled.size, Image.Resampling.LANCZOS) if content.size != styled.size else content
    y, _, _ = styled.convert("YCbCr").split()
    _, cb, cr = content.convert("YCbCr").split()
    return Image.merge("YCbCr", (y, cb, cr)).convert("RGB")


def encode_png(img: Image.Image, settings: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", optimize=False, **resultinfo.save_params("PNG", settings))
    return buffer.getvalue()


PREVIEW_SIDE = 256  # chat shows progress thumbnails small; 256 px keeps a JPEG near 10-20 kB
PREVIEW_QUALITY = 70


def encode_preview(img: Image.Image, *, max_side: int = PREVIEW_SIDE,
                   quality: int = PREVIEW_QUALITY) -> bytes:
    """A small JPEG of a job's intermediate image, for progress messages (no settings inside:
    a preview is not a result)."""
    buffer = io.BytesIO()
    fit_within(to_rgb(img), max_side).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


RESULT_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}


def encode_result(img: Image.Image, meta: "ResultMeta", *, fmt: str = "png",
                  max_bytes: int | None = None) -> Encoded:
    """The one way a result is encoded, on every front end: its settings go inside the file
    (``engine.resultinfo``). ``fmt`` is a file extension; with ``max_bytes`` the result may
    turn into a smaller JPEG as ``encode_within`` decides."""
    settings = resultinfo.settings_of(meta)
    if max_bytes is not None:
        return encode_within(img, max_bytes, settings)
    pil_format = RESULT_FORMATS.get(fmt.lower().lstrip("."), "PNG")
    if pil_format == "JPEG":
        img = img.convert("RGB")
    buffer = io.BytesIO()  # not optimised: speed over a few percent of bytes, as encode_png
    img.save(buffer, format=pil_format, **resultinfo.save_params(pil_format, settings))
    data = buffer.getvalue()
    name = {"JPEG": "jpg"}.get(pil_format, pil_format.lower())
    return Encoded(data, name, img.size)


@dataclass(frozen=True)
class Encoded:
    """An image encoded to fit a byte limit, and what it took."""

    data: bytes
    format: str  # the file extension: "png" or "jpg" (or "webp", "gif")
    size: tuple[int, int]
    quality: int | None = None  # JPEG quality, when JPEG
    resized: bool = False


def encode_within(img: Image.Image, max_bytes: int, settings: dict | None = None) -> Encoded:
    """PNG if it fits, else JPEG at falling quality, then smaller sizes: never dropped.

    Chat platforms refuse files over their upload limit; a result is worth more slightly
    compressed than not delivered. Below 16 px the smallest attempt is returned as is.
    ``settings`` are embedded in whichever file comes out (``resultinfo``).
    """
    png = _save(img, "PNG", **resultinfo.save_params("PNG", settings))
    if len(png) <= max_bytes:
        return Encoded(png, "png", img.size)
    rgb = img.convert("RGB")
    jpeg_info = resultinfo.save_params("JPEG", settings)
    for quality in (92, 85, 75):
        data = _save(rgb, "JPEG", quality=quality, **jpeg_info)
        if len(data) <= max_bytes:
            return Encoded(data, "jpg", rgb.size, quality)
    scaled = rgb
    while max(scaled.size) > 16:
        scaled = scaled.resize((max(1, int(scaled.width * 0.75)), max(1, int(scaled.height * 0.75))))
        data = _save(scaled, "JPEG", quality=85, **jpeg_info)
        if len(data) <= max_bytes:
            break
    return Encoded(data, "jpg", scaled.size, 85 if scaled is not rgb else 75, resized=scaled is not rgb)


def _save(img: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, optimize=True, **params)
    return buffer.getvalue()
