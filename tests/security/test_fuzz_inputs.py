"""Property-based fuzzing of what users type and upload: the command parser, option
validation and the image decoder. No input yields anything but a parsed result or one
clear line (a ``UserError``): never another exception, never a multi-line message."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import UserError
from engine.images import decode_image
from engine.methods import get_method, method_names
from stylebot.commands import parse_command, parse_flag

pytestmark = pytest.mark.security

# 200 examples a test in the suite; STYLEBOT_FUZZ_EXAMPLES=5000 for a deeper run by hand.
FUZZ = settings(max_examples=int(os.environ.get("STYLEBOT_FUZZ_EXAMPLES", "200")), deadline=None,
                database=None, suppress_health_check=[HealthCheck.too_slow])

# Text the way people type it into chat: keys, separators, quotes (straight and curly),
# slashes, numbers, unicode, control characters.
TOKENS = st.sampled_from([
    "/stylize", "/sd", "/preset", "/presets", "/cancel", "/queue", "/help", "/fast", "/gatys",
    "method:", "method=", "strength:", "strength=", "model:", "preset:", "prompt:", "blend:",
    "name:", "job:", "save", "use", "show", "delete", "list", '"', "'", "\u201c", "\u201d",
    "\u00ab", "\u00bb", "\\", ":", "=", ",", " ", "  ", "\n", "\t", "0.5", "-1", "1e309", "nan",
    "inf", "26:3=0.7,12=0.3", "../../etc", "\u202e", "\x00", "é", "🦊", "http://x", "10:30",
])
TYPED = st.one_of(st.text(max_size=200), st.lists(TOKENS, max_size=30).map("".join))


def one_line(error: UserError) -> None:
    assert error.message and "\n" not in error.message and "Traceback" not in error.message


@FUZZ
@given(TYPED, st.sampled_from([None, "stylize", "sd", "preset", "cancel", "fast"]))
def test_the_command_parser_parses_or_says_one_line(text, command):
    try:
        parsed = parse_command(text, command=command)
    except UserError as error:
        one_line(error)
        return
    again = parse_command(parsed.to_text())  # the canonical text reads back the same
    assert (again.name, again.method, again.options, again.prompt, again.preset) == (
        parsed.name, parsed.method, parsed.options, parsed.prompt, parsed.preset)


@FUZZ
@given(st.sampled_from(method_names()),
       st.dictionaries(st.one_of(st.sampled_from(["strength", "alpha", "size", "seed", "model",
                                                  "style_weight", "steps", "iterations",
                                                  "preserve_color", "scheduler", "decoder"]),
                                 st.text(max_size=20)),
                       st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.booleans(),
                                 st.none()),
                       max_size=5))
def test_option_validation_accepts_or_says_one_line(method, options):
    m = get_method(method)
    try:
        typed = m.options.validate(options, method=m.name)
    except UserError as error:
        one_line(error)
        return
    assert set(typed) == set(m.options.names)  # every option, defaults filled in


@FUZZ
@given(TYPED)
def test_a_yes_no_flag_is_yes_no_or_one_line(text):
    try:
        assert parse_flag("replace", text) in (True, False)
    except UserError as error:
        one_line(error)


def png(width: int, height: int, mode: int = 2, body: bytes | None = None) -> bytes:
    """A PNG with a declared size that may lie about its pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    if body is None:  # honest pixel data, only for sizes that fit in memory
        body = zlib.compress(b"\0" * (height * (width * 3 + 1))) if width * height < 10**6 else b""
    raw = body
    header = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def real_image(fmt: str, size: tuple[int, int], mode: str, seed: int) -> bytes:
    import random

    from PIL import Image

    buffer = io.BytesIO()
    noise = random.Random(seed).randbytes(size[0] * size[1] * 3)  # every PNG filter gets used
    image = Image.frombytes("RGB", size, noise).convert(mode)
    try:
        image.save(buffer, format=fmt)
    except (OSError, KeyError, ValueError):  # that format cannot store that mode
        image.convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


IMAGES = st.one_of(
    st.binary(max_size=2048),
    st.builds(png, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.sampled_from([0, 2, 3, 6, 7]),
              st.one_of(st.none(), st.binary(max_size=256))),
    st.builds(real_image, st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]),
              st.tuples(st.integers(1, 300), st.integers(1, 300)),
              st.sampled_from(["RGB", "L", "P", "RGBA", "LA", "1"]), st.integers(0, 2**16)),
)


@FUZZ
@given(IMAGES, st.data(), st.sampled_from([None, 16, 64]))
def test_the_image_decoder_decodes_or_says_one_line(data, draw, fit):
    """Whole, or streamed and reduced to a working size (``fit``, PNG a stripe at a time)."""
    # Real images, then cut or corrupted at a random place.
    if data and draw.draw(st.booleans()):
        cut = draw.draw(st.integers(0, len(data)))
        flip = draw.draw(st.integers(0, max(0, len(data) - 1)))
        data = data[:cut] if draw.draw(st.booleans()) else (
            data[:flip] + bytes([data[flip] ^ 0xFF]) + data[flip + 1:] if data else data)
    try:
        image = decode_image(data, max_bytes=1 << 20, max_pixels=4_000_000, fit=fit)
    except UserError as error:
        one_line(error)
        return
    assert image.mode == "RGB" and image.width * image.height <= 4_000_000
    if fit is not None:
        assert max(image.size) <= fit
