from __future__ import annotations

import io

import pytest

from engine import methods
from engine.request import ImageUpload, Requester, StyleRequest


@pytest.fixture
def toy_methods(monkeypatch):
    """Register the toy methods in the real registry for the duration of a test."""
    from tests.engine import toy_methods as toys

    monkeypatch.setitem(methods.METHOD_PATHS, "toy", "tests.engine.toy_methods:ToyInvert")
    monkeypatch.setitem(methods.METHOD_PATHS, "toystyle", "tests.engine.toy_methods:ToyStyled")
    monkeypatch.setitem(methods.METHOD_PATHS, "toyfade", "tests.engine.toy_methods:ToyFade")
    methods.get_method.cache_clear()
    methods.loadable_methods.cache_clear()
    toys.BATCHES.clear()
    toys.RAN.clear()
    toys.OOM_ABOVE["side"] = 10**9
    toys.GATE.set()
    yield toys
    toys.GATE.set()
    methods.get_method.cache_clear()
    methods.loadable_methods.cache_clear()


def png_bytes(size=(32, 24), color=(200, 30, 30), fmt="PNG", mode="RGB") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def toy_request(user="u1", method="toy", dims=(32, 24), **options) -> StyleRequest:
    return StyleRequest(method=method, content=ImageUpload(png_bytes(dims), "c.png"),
                        requester=Requester("test", user), options=options)
