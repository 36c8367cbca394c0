"""Untrusted uploads: refused with a clear reason, or decoded to upright RGB."""

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from engine.errors import ImageError
from engine.images import decode_image, encode_within, fit_within, preserve_color, to_image, to_tensor

LIMITS = dict(max_bytes=5 * 1024 * 1024, max_pixels=4_000_000)


def encode(img, fmt="PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def test_non_image_is_refused():
    with pytest.raises(ImageError, match="not an image Stylebot can read"):
        decode_image(b"hello, I am a text file", **LIMITS)


def test_empty_is_refused():
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"", **LIMITS)


def test_too_many_bytes_is_refused_before_decoding():
    with pytest.raises(ImageError, match=r"is 6.0 MB; the limit is 5.0 MB"):
        decode_image(b"\0" * (6 * 1024 * 1024), **LIMITS)


def test_decompression_bomb_is_refused_without_decoding():
    # A 10000x10000 PNG of one colour compresses to a few KB but would be 300 MB decoded.
    bomb = encode(Image.new("L", (10000, 10000)), optimize=True)
    assert len(bomb) < 200_000
    with pytest.raises(ImageError, match="10000x10000 pixels; the limit is 4 megapixels"):
        decode_image(bomb, **LIMITS)


def test_truncated_file_is_refused():
    data = encode(Image.effect_noise((200, 200), 50).convert("RGB"), "JPEG")
    with pytest.raises(ImageError, match="truncated or damaged"):
        decode_image(data[: len(data) // 2], **LIMITS)


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    out = decode_image(encode(img, "JPEG", exif=exif), **LIMITS)
    assert out.size == (20, 40)


@pytest.mark.parametrize("mode, fmt", [("CMYK", "JPEG"), ("P", "PNG"), ("L", "PNG"), ("LA", "PNG"),
                                       ("RGBA", "PNG"), ("I;16", "PNG"), ("1", "BMP")])
def test_odd_modes_become_rgb(mode, fmt):
    img = Image.new("RGB", (16, 12), (10, 120, 240)).convert(mode) if mode != "I;16" else \
        Image.new("I;16", (16, 12), 40000)
    out = decode_image(encode(img, fmt), **LIMITS)
    assert out.mode == "RGB" and out.size == (16, 12)


def test_transparency_is_composited_over_white():
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert decode_image(encode(img), **LIMITS).getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_range_is_kept():
    img = Image.linear_gradient("L").resize((64, 64)).convert("I")
    img = img.point(lambda v: v * 200).convert("I;16")
    out = decode_image(encode(img), **LIMITS)
    lo, hi = out.convert("L").getextrema()
    assert lo < 10 and hi > 245


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    r, g, b = decode_image(buffer.getvalue(), **LIMITS).getpixel((5, 5))
    assert r > 200 and b < 50


def test_fit_within_keeps_aspect_and_never_enlarges():
    assert fit_within(Image.new("RGB", (2000, 1000)), 1024).size == (1024, 512)
    assert fit_within(Image.new("RGB", (100, 50)), 1024).size == (100, 50)


def test_tensor_round_trip_is_lossless():
    img = Image.effect_noise((20, 10), 60).convert("RGB")
    t = to_tensor(img)
    assert tuple(t.shape) == (1, 3, 10, 20) and 0 <= float(t.min()) and float(t.max()) <= 1
    assert to_image(t).tobytes() == img.tobytes()


def test_preserve_color_keeps_content_chroma_and_styled_luma():
    content = Image.new("RGB", (8, 8), (200, 40, 40))
    styled = Image.new("RGB", (8, 8), (30, 30, 200))
    out = preserve_color(content, styled)
    y_out, cb, cr = out.convert("YCbCr").getpixel((0, 0))
    y_styled = styled.convert("YCbCr").getpixel((0, 0))[0]
    _, cb_c, cr_c = content.convert("YCbCr").getpixel((0, 0))
    assert abs(y_out - y_styled) <= 2 and abs(cb - cb_c) <= 2 and abs(cr - cr_c) <= 2


def test_encode_within_shrinks_instead_of_dropping():
    img = Image.effect_noise((600, 600), 100).convert("RGB")
    encoded = encode_within(img, 60_000)
    assert len(encoded.data) <= 60_000 and encoded.format == "jpg"
    assert Image.open(io.BytesIO(encoded.data)).size == encoded.size and encoded.size[0] <= 600
    small = Image.new("RGB", (40, 40), (10, 20, 30))
    assert encode_within(small, 10_000).format == "png"


# --- decoding straight to the working size (issue 11 #11) ------------------------------------

def gradient(size=(1203, 901)) -> Image.Image:
    """Smooth but not flat, so resampling differences show."""
    w, h = size
    return Image.merge("RGB", (Image.linear_gradient("L").resize((w, h)),
                               Image.linear_gradient("L").rotate(90).resize((w, h)),
                               Image.radial_gradient("L").resize((w, h))))


@pytest.mark.parametrize("mode, fmt", [("RGB", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("LA", "PNG"),
                                       ("1", "PNG"), ("I;16", "PNG"), ("RGB", "JPEG"), ("RGB", "WEBP"),
                                       ("CMYK", "JPEG"), ("RGB", "GIF")])
def test_fit_decodes_to_at_most_the_working_size_as_fit_within_did(mode, fmt):
    img = gradient().convert(mode) if mode != "I;16" else gradient().convert("I").convert("I;16")
    data = encode(img, fmt)
    old = fit_within(decode_image(data, **LIMITS), 300)
    new = decode_image(data, **LIMITS, fit=300)
    assert new.mode == "RGB" and new.size == old.size == (300, 225)
    diff = ImageChops.difference(old, new)
    mean = sum(ImageStat.Stat(diff).mean) / 3
    assert mean < (6 if mode == "1" else 3)  # resampling differences only (0..255)


def test_fit_never_enlarges():
    assert decode_image(encode(gradient((120, 90))), **LIMITS, fit=300).size == (120, 90)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_fit_applies_exif_rotation(fmt):
    exif = Image.Exif()
    exif[0x0112] = 6
    out = decode_image(encode(gradient((800, 400)), fmt, exif=exif), **LIMITS, fit=200)
    assert out.size == (100, 200)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1"])
def test_png_stripes_equal_the_whole_image_reduced(mode, monkeypatch):
    """Stripe by stripe (a few rows each here) gives exactly the whole-image result."""
    from engine import pngstream
    from engine.images import to_rgb

    monkeypatch.setattr(pngstream, "STRIPE_BYTES", 20_000)
    data = encode(gradient().convert(mode))
    whole = to_rgb(Image.open(io.BytesIO(data))).resize((300, 225), Image.Resampling.LANCZOS,
                                                         reducing_gap=2.0)
    assert decode_image(data, **LIMITS, fit=300).tobytes() == whole.tobytes()


def test_large_png_is_never_decoded_at_full_size(monkeypatch):
    """A 6000x6000 PNG (144 MB in Pillow) is decoded a stripe at a time, never whole."""
    from PIL import PngImagePlugin

    data = encode(Image.new("RGB", (6000, 6000), (20, 90, 200)))

    def whole_load(self):
        raise AssertionError("the whole PNG was decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", whole_load)
    out = decode_image(data, max_bytes=LIMITS["max_bytes"], max_pixels=40_000_000, fit=1024)
    assert out.size == (1024, 1024) and out.getpixel((500, 500)) == (20, 90, 200)


def test_damaged_png_is_refused_when_fitted():
    data = bytearray(encode(gradient()))
    with pytest.raises(ImageError, match="truncated or damaged"):
        decode_image(bytes(data[: len(data) // 2]), **LIMITS, fit=300)
    idat = data.index(b"IDAT")
    data[idat + 40] ^= 0xFF  # a flipped byte: the chunk's CRC no longer matches
    with pytest.raises(ImageError, match="truncated or damaged"):
        decode_image(bytes(data), **LIMITS, fit=300)


def test_a_palette_png_without_its_palette_is_decoded_or_refused_not_a_crash():
    """Found by the fuzzer: streaming a P image with no PLTE chunk crashed (no palette)."""
    data = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x11\x00\x00\x00\x01\x08\x03\x00\x00"
            b"\x00\x0fe\xb5S\x00\x00\x00\x0cIDATx\x9cc` \x1d\x00\x00\x004\x00\x01v^\xae\xc3")
    try:
        image = decode_image(data, max_bytes=1 << 20, max_pixels=10**6, fit=16)
    except ImageError as error:
        assert "\n" not in error.message
    else:
        assert image.mode == "RGB" and max(image.size) <= 16
