"""`/sd` end to end with the real sd method, on a tiny Stable Diffusion saved in the Hub layout."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.engine.methods.sd_tiny import save_safety_checker, save_sd

from .conftest import png_bytes

# Tiny networks: on a shared 2-core machine a second torch thread only spins.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sd_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd-weights")
    save_sd(root / "stabilityai" / "sd-turbo")
    save_safety_checker(root / "CompVis" / "stable-diffusion-safety-checker", flag=False)
    return root


@pytest.fixture
def slack_settings(slack_settings, sd_weights):
    return slack_settings.model_copy(update={"weights_dir": sd_weights})


@pytest.mark.slow
async def test_sd_prompt_with_options_restyles_the_shared_image(slack, fake):
    photo = png_bytes((64, 64), (40, 120, 200))
    fake.share("C1", "U1", [fake.add_file(photo, "lake.png")])
    status, body = await slack.command("/sd", "a watercolour fox strength=0.6 steps=2 seed=7")
    assert status == 200 and not body
    summary = (await fake.delivered(timeout=60))[0]
    assert "*Restyled with sd*" in summary["blocks"][0]["text"]["text"]
    assert "> a watercolour fox" in summary["blocks"][0]["text"]["text"]
    context = summary["blocks"][1]["elements"][0]["text"]
    assert "strength=0.6" in context and "steps=2" in context and "seed 7" in context
    file_id = fake.called("files.completeUploadExternal")[0].args["files"][0]["id"]
    result = Image.open(io.BytesIO(fake.uploads[file_id])).convert("RGB")
    assert result.size == (64, 64)
    assert result.tobytes() != Image.open(io.BytesIO(photo)).convert("RGB").tobytes()
    remembered = slack.bot.flow.service.recent_result(summary["blocks"][2]["block_id"].removeprefix("result_"))
    assert remembered.request.prompt == "a watercolour fox" and remembered.meta.seed == 7


async def test_sd_refuses_an_option_outside_its_declared_range(slack, fake):
    status, body = await slack.command("/sd", "a fox steps=99")
    assert status == 200
    assert body["text"].startswith("⚠️ Option 'steps' is 99, outside its allowed range 1..50")
