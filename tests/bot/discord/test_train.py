"""/train on Discord against the fake: refusals, channel progress, the ready message, and a
trained style that only its owner sees in `model:` autocomplete and can use.

The training is the real one (VGG19 loss, 3 steps on 32-pixel photos made here).
"""

from __future__ import annotations

import re

import pytest

from engine.request import Requester
from stylebot.settings import Settings
from tests.bot.discord.conftest import send
from tests.bot.discord.fake_discord import ALICE, APP_ID, BOB, CHANNEL_ID
from tests.bot.discord.test_stylize import ephemeral_refusal, last_edit
from tests.bot.helpers import png_bytes
from tests.conftest import SHARED_WEIGHTS, WEIGHTS_STAGED
from tests.stylebot.test_train_styles import NOT_SET_UP, content_photos

CHANNEL = f"/channels/{CHANNEL_ID}/messages"


@pytest.fixture
def bot_settings(tmp_path):
    return Settings(home=tmp_path / "home", device="cpu", allow_downloads=False, max_upload_mb=1,
                    weights_dir=SHARED_WEIGHTS if WEIGHTS_STAGED else None,
                    discord_token="test-token", chat_rate_limit=50, cpu_runtime="torch",
                    training_images=content_photos(tmp_path / "photos"), allow_cpu_training=True,
                    training_steps=3, training_image_size=32, training_batch_size=2)


def style(fake):
    from engine.samples import sample_style

    return fake.attachment(png_bytes(sample_style(48)), "swirl.png")


def photo(fake):
    from engine.samples import sample_content

    return fake.attachment(png_bytes(sample_content(48)), "photo.png")


async def model_choices(bot, fake, who, typed="") -> list[str]:
    payload = send(bot, fake.slash("stylize", {"method": "fast", "model": typed},
                                   autocomplete="model", who=who))
    call = await fake.wait_call("POST", f"/interactions/{payload['id']}/")
    return [c["value"] for c in call.json["data"]["choices"]]


@pytest.mark.slow
async def test_train_reports_in_the_channel_and_only_its_owner_gets_the_style(bot, fake,
                                                                              shared_weights):
    payload = send(bot, fake.slash("train", {"style": style(fake), "name": "mine"}))
    assert await last_edit(fake, payload, "🎓") == (
        "🎓 Training **mine** started (3 steps, between other people's jobs); its progress is in "
        "this channel. `/cancel` stops it.")
    ready = await fake.wait_call("POST", CHANNEL, n=2, timeout=120)
    assert ready.json["content"] == (
        f"✅ <@{ALICE['id']}>, your style **mine** is ready: use it with "
        "`/stylize method:fast model:mine` (only you can).")
    assert [str(u) for u in ready.json["allowed_mentions"]["users"]] == [ALICE["id"]]

    progress = fake.find("POST", CHANNEL)[0]
    assert progress.json["content"] == "🎓 Training style **mine** for Alice: 0/3 steps"
    assert progress.json["allowed_mentions"] == {"parse": []}
    edits = [c.json["content"] for c in fake.find("PATCH", CHANNEL)]
    assert edits[-1] == "🎓 Training style **mine** for Alice: 3/3 steps ✅"
    steps = [int(re.search(r"(\d)/3", e).group(1)) for e in edits]
    assert steps == sorted(steps)

    assert await model_choices(bot, fake, ALICE, "mi") == ["mine"]
    assert (await model_choices(bot, fake, ALICE))[0] == "mine"
    assert "mine" not in await model_choices(bot, fake, BOB)

    used = send(bot, fake.slash("stylize", {"content": photo(fake), "method": "fast",
                                            "model": "mine"}))
    result = await fake.wait_call("POST", f"/webhooks/{APP_ID}/{used['token']}", timeout=60)
    assert result.json["embeds"][0]["title"] == "Stylized with fast"

    theirs = await ephemeral_refusal(fake, send(bot, fake.slash(
        "stylize", {"content": photo(fake), "method": "fast", "model": "mine"}, who=BOB)))
    nothing = await ephemeral_refusal(fake, send(bot, fake.slash(
        "stylize", {"content": photo(fake), "method": "fast", "model": "nosuch"}, who=BOB)))
    assert "unknown model 'mine'" in theirs
    assert theirs == nothing.replace("nosuch", "mine")


async def test_train_is_refused_on_a_cpu_without_the_setting_before_any_download(bot, fake):
    bot.service.settings.allow_cpu_training = False
    payload = send(bot, fake.slash("train", {"style": style(fake), "name": "mine"}))
    assert await ephemeral_refusal(fake, payload) == (
        "⚠️ Training a style needs a GPU and this server has none (its operator can allow slow "
        "CPU training with STYLEBOT_ALLOW_CPU_TRAINING).")
    assert fake.downloads == []
    assert fake.find("POST", CHANNEL) == []


async def test_train_without_content_photos_is_one_line(bot, fake, tmp_path):
    bot.service.settings.training_images = tmp_path / "nowhere"
    payload = send(bot, fake.slash("train", {"style": style(fake), "name": "mine"}))
    assert await ephemeral_refusal(fake, payload) == "⚠️ " + NOT_SET_UP


async def test_one_training_at_a_time_per_user_and_cancel_stops_it(bot, fake, shared_weights):
    bot.service.settings.training_steps = 10_000
    first = send(bot, fake.slash("train", {"style": style(fake), "name": "long"}))
    await last_edit(fake, first, "🎓")
    second = send(bot, fake.slash("train", {"style": style(fake), "name": "other"}))
    assert await ephemeral_refusal(fake, second) == (
        "⚠️ You are already training 'long'; wait until it is ready.")
    training = bot.service.trainings.running(Requester("discord", ALICE["id"]))
    send(bot, fake.slash("train", {"style": style(fake), "name": "other"}, who=BOB))
    waiting = await fake.wait_call("PATCH", CHANNEL, where=lambda c: "⏳" in c.json["content"])
    assert waiting.json["content"] == (
        "⏳ Training style **other** for Bob: waiting for 1 other training to finish")
    bobs = bot.service.trainings.running(Requester("discord", BOB["id"]))
    bobs_cancel = send(bot, fake.slash("cancel", {}, who=BOB))  # his own, not Alice's
    answer = await fake.wait_call("POST", f"/interactions/{bobs_cancel['id']}/")
    assert answer.json["data"]["content"] == f"🛑 Cancelling job `{bobs.id}`."
    assert training.final is None
    cancel = send(bot, fake.slash("cancel", {}))
    answer = await fake.wait_call("POST", f"/interactions/{cancel['id']}/")
    assert answer.json["data"]["content"] == f"🛑 Cancelling job `{training.id}`."
    # Bob's and Alice's stops may reach the channel in either order (a training process
    # is ended at once; a waiting training notices at its next look at the line).
    stopped = await fake.wait_call("PATCH", CHANNEL, timeout=60,
                                   where=lambda c: "**long** stopped" in c.json["content"])
    assert stopped.json["content"] == (f"⚠️ Training **long** stopped: cancelled by you (training "
                                       f"{training.id}); nothing was saved.")


async def test_delete_style_offers_and_deletes_only_your_own(bot, fake, shared_weights):
    import shutil

    folder = bot.service.trained.folder(Requester("discord", ALICE["id"]))
    folder.mkdir(parents=True)
    shutil.copy(shared_weights / "fast_neural_style" / "mosaic.pth", folder / "mine.pth")
    offered = send(bot, fake.slash("delete-style", {"name": "m"}, autocomplete="name"))
    call = await fake.wait_call("POST", f"/interactions/{offered['id']}/")
    assert call.json["data"]["choices"] == [{"name": "mine", "value": "mine"}]
    offered = send(bot, fake.slash("delete-style", {"name": ""}, autocomplete="name", who=BOB))
    call = await fake.wait_call("POST", f"/interactions/{offered['id']}/")
    assert call.json["data"]["choices"] == []

    bobs = await ephemeral_refusal(fake, send(bot, fake.slash("delete-style", {"name": "mine"},
                                                              who=BOB)))
    assert bobs == "⚠️ You have no style named 'mine'. You have no styles yet."
    assert (folder / "mine.pth").exists()
    deleted = send(bot, fake.slash("delete-style", {"name": "mine"}))
    answer = await fake.wait_call("POST", f"/interactions/{deleted['id']}/")
    assert answer.json["data"]["content"] == "🗑️ Deleted your style **mine**."
    assert not (folder / "mine.pth").exists()
