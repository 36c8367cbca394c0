"""The playground's fixtures: settings on an ephemeral local port and small images."""

from __future__ import annotations

import pytest

from tests.bot.helpers import bot_settings, png_bytes


@pytest.fixture
def content_png(content_image):
    return png_bytes(content_image.resize((64, 48)))


@pytest.fixture
def style_png(style_image):
    return png_bytes(style_image.resize((64, 64)))


@pytest.fixture
def pg_settings(settings, shared_weights):
    return bot_settings(settings)
