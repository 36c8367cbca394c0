"""The adapter with a real method and real weights: what Discord users get is the method's output."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.samples import sample_content
from stylebot.settings import Settings
from stylebot.service import StyleService
from tests.bot.discord.conftest import image_of, send
from tests.bot.discord.fake_discord import APP_ID

CANDY_REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "fast_candy_sample64.png"


@pytest.fixture
async def real_bot(tmp_path, shared_weights, fake):
    from bot.discord.app import StylebotClient

    pytest.importorskip("engine.methods.fast")
    settings = Settings(home=tmp_path / "home", device="cpu", weights_dir=shared_weights,
                        allow_downloads=False, max_side=256)
    service = await StyleService.open(settings)
    client = StylebotClient(service, settings, edit_interval_s=0.05)
    await client.login("test-token")
    yield client
    await client.flow.idle()
    await client.close()
    await service.close(grace_s=1)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


@pytest.mark.slow  # about 4 s, or 11 s alone because it is the first to import torch
async def test_fast_candy_through_discord_matches_the_reference(real_bot, fake):
    photo = io.BytesIO()
    sample_content(64).save(photo, "PNG")
    payload = send(real_bot, fake.slash("stylize", {"content": fake.attachment(photo.getvalue(), "p.png"),
                                                    "method": "fast", "options": "model=candy"}))
    result = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{payload['token']}", timeout=60)
    out = image_of(result.files[0])
    reference = Image.open(CANDY_REFERENCE)
    diff = np.abs(pixels(out) - pixels(reference))
    assert out.size == reference.size and diff.mean() < 0.5 and diff.max() <= 3
    fields = {f["name"]: f["value"] for f in result.json["embeds"][0]["fields"]}
    assert fields["Options"] == "model=candy"  # the result names the network it used
    # candy's strength defaults to its maximum: Stronger has no room, so it is not offered
    assert [c.split(":")[1] for c in result.custom_ids()] == ["weaker", "save", "info", "delete"]

    # Weaker: the same network at strength 0.8, i.e. closer to the photo than full candy.
    message = fake.messages[result.response["id"]]
    click = send(real_bot, fake.component(message, next(c for c in result.custom_ids() if ":weaker:" in c)))
    weaker = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{click['token']}", timeout=60)
    assert {f["name"]: f["value"] for f in weaker.json["embeds"][0]["fields"]}["Options"] == "model=candy strength=0.8"
    softer = pixels(image_of(weaker.files[0]))
    photo_pixels = pixels(sample_content(64))
    assert np.abs(softer - photo_pixels).mean() < np.abs(pixels(out) - photo_pixels).mean()
    assert np.abs(softer - pixels(out)).mean() > 1
