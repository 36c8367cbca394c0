"""PNG decoded a stripe of rows at a time and box-reduced as it comes.

A 40-megapixel PNG can be 130 KB on the wire and 160 MB in Pillow (RGB is stored four
bytes a pixel), and Pillow has no ``draft`` for PNG: it always decodes the whole image.
Here the IDAT stream is inflated a few megabytes at a time; each stripe is handed to
Pillow's own PNG row decoder (so its filters, bit depths and palettes are Pillow's) and
reduced by an integer factor, so only the reduced image is ever held whole.

Pillow's row decoder starts from a zero "previous row", while PNG filters refer to the row
above; each stripe is therefore decoded with the previous stripe's last row, unfiltered,
in front of it. Stripes are decoded in a byte-level mode with the same bytes per pixel
(the unit PNG filters work in) and unpacked to the image's own mode afterwards.
"""

from __future__ import annotations

import struct
import zlib
from typing import Callable, Iterator

from PIL import Image

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
BYTE_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # filter bytes per pixel -> a mode storing them as is
STRIPE_BYTES = 4 << 20  # filtered bytes inflated per stripe
# Modes whose conversion to RGB depends on the whole image (16-bit range scaling).
GLOBAL_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class Layout:
    """What the IHDR says about rows, or None from ``layout`` when the image cannot stream."""

    def __init__(self, width: int, height: int, row_bytes: int, filter_bpp: int) -> None:
        self.width, self.height = width, height
        self.row_bytes, self.filter_bpp = row_bytes, filter_bpp


def layout(data: bytes, img: Image.Image) -> Layout | None:
    """The row layout of ``img`` (opened from ``data``), or None where it must decode whole:
    interlaced, animated, 16 bits per colour sample or a 16-bit grey mode."""
    if img.format != "PNG" or getattr(img, "is_animated", False) or img.mode in GLOBAL_MODES:
        return None
    if img.mode == "P" and img.palette is None:
        return None  # a palette image without PLTE: Pillow's whole decode decides what it is
    if len(img.tile) != 1 or img.tile[0][0] != "zip" or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if interlace or colour not in CHANNELS or (width, height) != img.size:
        return None
    bits = depth * CHANNELS[colour]
    filter_bpp = max(1, bits // 8)
    if filter_bpp not in BYTE_MODES:
        return None  # RGB(A) at 16 bits per sample: no 8-bit mode with 6 or 8 bytes a pixel
    return Layout(width, height, (width * bits + 7) // 8, filter_bpp)


def decode_reduced(data: bytes, img: Image.Image, lay: Layout, factor: tuple[int, int],
                   to_rgb: Callable[[Image.Image], Image.Image]) -> tuple[Image.Image, bytes | None]:
    """The image as RGB reduced by ``factor`` (what ``to_rgb(img).reduce(factor)`` gives),
    and the raw eXIf chunk if one follows the pixels. Damage raises OSError or SyntaxError."""
    fx, fy = factor
    rawmode = img.tile[0][3]
    byte_mode = BYTE_MODES[lay.filter_bpp]
    byte_width = lay.row_bytes // lay.filter_bpp
    rows_per_stripe = max(fy, STRIPE_BYTES // (lay.row_bytes + 1) // fy * fy)
    out = Image.new("RGB", (-(-lay.width // fx), -(-lay.height // fy)))
    trailing: dict[bytes, bytes] = {}
    inflate = zlib.decompressobj()
    compressed = _idat(data, trailing)
    pending = b""
    previous = bytes(lay.row_bytes)
    y = 0
    while y < lay.height:
        rows = min(rows_per_stripe, lay.height - y)
        want = rows * (lay.row_bytes + 1)
        filtered = _inflate(inflate, compressed, pending, want)
        pending = filtered[want:]
        filtered = filtered[:want]
        # The previous row travels unfiltered (filter type 0) in front of the stripe.
        stored = zlib.compress(b"\0" + previous + filtered, 0)
        unfiltered = Image.frombytes(byte_mode, (byte_width, rows + 1), stored, "zip", byte_mode).tobytes()
        previous = unfiltered[-lay.row_bytes:]
        stripe = Image.frombytes(img.mode, (lay.width, rows), unfiltered[lay.row_bytes:], "raw", rawmode)
        del unfiltered, stored, filtered
        if img.mode == "P":
            stripe.putpalette(img.palette.tobytes(), img.palette.mode)
        if "transparency" in img.info:
            stripe.info["transparency"] = img.info["transparency"]
        stripe = to_rgb(stripe)
        out.paste(stripe.reduce(factor) if factor != (1, 1) else stripe, (0, y // fy))
        y += rows
    for _ in compressed:  # read on to IEND for an eXIf chunk after the pixels
        pass
    return out, trailing.get(b"eXIf")


def _inflate(inflate, compressed: Iterator[bytes], pending: bytes, want: int) -> bytes:
    """At least ``want`` inflated bytes (never many more: a zip bomb inflates no further)."""
    parts = [pending]
    have = len(pending)
    while have < want:
        source = inflate.unconsumed_tail or next(compressed, b"")
        if not source:
            raise OSError("PNG image data ends early (truncated)")
        try:
            chunk = inflate.decompress(source, want - have)
        except zlib.error as exc:
            raise OSError(f"PNG image data is damaged: {exc}") from None
        parts.append(chunk)
        have += len(chunk)
        if not chunk and inflate.eof:
            raise OSError("PNG image data ends early")
    return b"".join(parts)


def _idat(data: bytes, trailing: dict[bytes, bytes]) -> Iterator[bytes]:
    """The IDAT payloads in order, each CRC-checked; later chunks are kept in ``trailing``."""
    pos, seen_idat = 8, False
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) < length or len(crc) < 4:
            raise OSError("PNG file is truncated")
        if kind == b"IDAT" or seen_idat:
            if struct.unpack(">I", crc)[0] != zlib.crc32(kind + body):
                raise SyntaxError(f"broken PNG file (bad CRC in {kind!r})")
        if kind == b"IDAT":
            seen_idat = True
            yield body
        elif kind == b"IEND":
            return
        elif seen_idat:
            trailing[kind] = body
        pos += 12 + length
