"""Tiny pictures are refused before queueing with the method's minimum named, never a crash."""

from __future__ import annotations

import pytest

from engine.engine import StyleEngine
from engine.errors import ImageError
from engine.request import ImageUpload, Requester, StyleRequest
from tests.engine.conftest import png_bytes


def request(method: str, content=(10, 10), styles=(), **options) -> StyleRequest:
    return StyleRequest(method=method, content=ImageUpload(png_bytes(content), "c.png"),
                        requester=Requester("test", "u"), options=options,
                        styles=[ImageUpload(png_bytes(s), "s.png") for s in styles])


@pytest.mark.security
@pytest.mark.parametrize("method, content, styles, minimum", [
    ("gatys", (10, 10), [(64, 64)], 16),  # max_pool2d crashed ("Something went wrong")
    ("gatys", (64, 64), [(12, 40)], 16),  # a sliver of a style went the same way
    ("fast", (64, 4), [], 8),
    ("hub", (200, 10), [(64, 64)], 16),
])
def test_too_small_for_the_method_is_refused_before_queueing(settings, method, content, styles, minimum):
    engine = StyleEngine(settings)
    with pytest.raises(ImageError, match=f"method '{method}' needs at least {minimum} pixels on each side"):
        engine.prepare(request(method, content, styles))


def test_adain_pads_tiny_pictures_itself(settings):
    engine = StyleEngine(settings)
    prepared = engine.prepare(request("adain", (6, 6), [(5, 5)]))
    assert prepared.input.content.size == (6, 6)  # accepted: the method pads and crops back
