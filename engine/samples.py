"""Small sample pictures the project draws itself, so the demo and tests need no downloads."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFilter


def sample_content(size: int = 256) -> Image.Image:
    """A simple landscape: sky gradient, sun, two hills, a house with a window."""
    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    for y in range(size):
        t = y / size
        draw.line([(0, y), (size, y)], fill=(int(90 + 120 * t), int(150 + 80 * t), 235))
    s = size / 256
    draw.ellipse([190 * s, 25 * s, 235 * s, 70 * s], fill=(255, 215, 80))
    draw.ellipse([-80 * s, 150 * s, 180 * s, 360 * s], fill=(60, 140, 60))
    draw.ellipse([90 * s, 170 * s, 360 * s, 380 * s], fill=(40, 110, 50))
    draw.rectangle([60 * s, 150 * s, 120 * s, 205 * s], fill=(200, 70, 60))
    draw.polygon([(52 * s, 152 * s), (90 * s, 115 * s), (128 * s, 152 * s)], fill=(110, 50, 40))
    draw.rectangle([78 * s, 165 * s, 100 * s, 185 * s], fill=(250, 240, 170))
    return img.filter(ImageFilter.SMOOTH)


def sample_style(size: int = 256) -> Image.Image:
    """A bold, colourful swirl-and-stripe pattern with strong texture."""
    img = Image.new("RGB", (size, size))
    pixels = img.load()
    for y in range(size):
        for x in range(size):
            u, v = x / size - 0.5, y / size - 0.5
            r, a = math.hypot(u, v), math.atan2(v, u)
            swirl = math.sin(24 * r + 3 * a)
            stripe = math.sin(40 * (u + v))
            pixels[x, y] = (int(127 + 120 * swirl), int(127 + 100 * stripe * swirl),
                            int(127 - 120 * stripe))
    return img
