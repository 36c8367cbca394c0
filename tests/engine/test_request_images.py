"""A request's uploads: each decoded to its working size, all together under a pixel cap."""

from __future__ import annotations

import platform

import pytest

from engine.engine import StyleEngine
from engine.errors import ImageError
from engine.memory import release_memory
from engine.request import ImageUpload, Requester, StyleRequest
from tests.engine.conftest import png_bytes


def request(content=(600, 400), styles=((500, 500),), **options) -> StyleRequest:
    return StyleRequest(method="hub", content=ImageUpload(png_bytes(content), "c.png"),
                        requester=Requester("test", "u"), options=options,
                        styles=[ImageUpload(png_bytes(s), "s.png") for s in styles])


def test_uploads_are_decoded_to_at_most_the_working_size(settings):
    prepared = StyleEngine(settings).prepare(request(styles=((500, 500), (300, 900))))
    assert prepared.input.content.size == (256, 171)  # max_side 256 in the test settings
    assert [s.size for s in prepared.input.styles] == [(256, 256), (85, 256)]


def test_size_option_still_enlarges_a_small_content(settings):
    prepared = StyleEngine(settings).prepare(request(content=(100, 50), size=200))
    assert prepared.input.content.size == (200, 100)


def test_too_many_pixels_in_one_request_are_refused_in_one_line(settings):
    engine = StyleEngine(settings.model_copy(update={"max_request_pixels": 400_000}))
    engine.prepare(request(content=(400, 400), styles=((400, 500),)))  # 360,000: fine
    with pytest.raises(ImageError) as refused:
        engine.prepare(request(content=(400, 400), styles=((400, 400), (300, 300))))
    assert str(refused.value) == ("These 3 images hold 0.41 megapixels together; "
                                  "the limit per request is 0.4 megapixels.")
    with pytest.raises(ImageError, match="limit per request is 0.4 megapixels"):
        engine.decode_styles([ImageUpload(png_bytes((700, 700)), "s.png")], 256)  # presets too


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_memory_is_given_back_on_glibc():
    assert release_memory() is True
