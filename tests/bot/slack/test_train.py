"""/train on Slack against the fake: refusals in the ack, channel progress, the ready message,
and a trained style that only its owner can list and use.

The training is the real one (VGG19 loss, 3 steps on 32-pixel photos made here).
"""

from __future__ import annotations

import re

import pytest

from bot.slack import render as blocks
from engine.request import Requester
from engine.samples import sample_content
from tests.bot.helpers import png_bytes
from tests.stylebot.test_train_styles import NOT_SET_UP, content_photos


@pytest.fixture
def slack_settings(slack_settings, tmp_path):
    return slack_settings.model_copy(update=dict(
        training_images=content_photos(tmp_path / "photos"), allow_cpu_training=True,
        training_steps=3, training_image_size=32, training_batch_size=2, cpu_runtime="torch",
        chat_rate_limit=50))


def share_style(fake, user="U1"):
    from engine.samples import sample_style

    fake.share("C1", user, [fake.add_file(png_bytes(sample_style(48)), "swirl.png", user=user)])


def share_photo(fake, user="U1"):
    fake.share("C1", user, [fake.add_file(png_bytes(sample_content(48)), "photo.png", user=user)])


def ready_messages(fake):
    return [m for m in fake.posted.values() if "is ready" in (m.get("text") or "")]


@pytest.mark.slow
async def test_train_reports_in_the_channel_and_only_its_owner_gets_the_style(slack, fake,
                                                                              shared_weights):
    share_style(fake)
    status, body = await slack.command("/train", "mine")
    assert status == 200 and not body
    [ready] = await fake.wait_for(lambda: ready_messages(fake), 120, "the ready message")
    assert ready["text"] == (":white_check_mark: <@U1>, your style `mine` is ready: use it with "
                             "`/stylize method=fast model=mine` (only you can).")
    assert ready["channel"] == "C1"
    [progress] = [m for m in fake.posted.values() if m is not ready]
    texts = [progress["text"]] if not progress["edits"] else [e["text"] for e in progress["edits"]]
    assert texts[-1] == (":mortar_board: Training style `mine` for <@U1>: 3/3 steps "
                         ":white_check_mark:")
    steps = [int(re.search(r"(\d)/3", t).group(1)) for t in texts]
    assert steps == sorted(steps)

    _, mine = await slack.command("/train", "")
    assert "\nYour styles: `mine`. " in mine["text"]
    _, theirs = await slack.command("/train", "", user="U2")
    assert "\nYou have no trained styles yet. " in theirs["text"]

    share_photo(fake)
    status, body = await slack.command("/stylize", "method=fast model=mine")
    assert status == 200 and not body
    [summary] = await fake.wait_for(fake.results, 60, "the result")  # the training's message stays
    assert "fast" in summary["blocks"][0]["text"]["text"]

    share_photo(fake, "U2")
    _, refused = await slack.command("/stylize", "method=fast model=mine", user="U2")
    _, unknown = await slack.command("/stylize", "method=fast model=nosuch", user="U2")
    assert "unknown model 'mine'" in refused["text"]
    assert refused["text"] == unknown["text"].replace("nosuch", "mine")


async def test_train_is_refused_on_a_cpu_without_the_setting_before_any_download(slack, fake,
                                                                                 service):
    service.settings.allow_cpu_training = False
    share_style(fake)
    _, body = await slack.command("/train", "mine")
    assert body == {"text": blocks.refused(
        "Training a style needs a GPU and this server has none (its operator can allow slow "
        "CPU training with STYLEBOT_ALLOW_CPU_TRAINING)."), "response_type": "ephemeral"}
    assert fake.downloads == [] and fake.posted == {}


async def test_train_without_content_photos_or_with_two_names_is_one_line(slack, fake, service,
                                                                          tmp_path):
    _, body = await slack.command("/train", "starry night")
    assert body["text"].startswith("⚠️ Give one name for your style, e.g. `/train starry-night`.")
    service.settings.training_images = tmp_path / "nowhere"
    _, body = await slack.command("/train", "name=mine")
    assert body["text"] == blocks.refused(NOT_SET_UP)


async def test_train_without_a_shared_image_says_how(slack, fake, shared_weights):
    status, body = await slack.command("/train", "mine")
    assert status == 200 and not body
    [told] = await fake.wait_for(fake.ephemeral_texts, 15, "the answer")
    assert told.startswith("⚠️ I found no image you shared here in the last 10 min: share the style")


def give_style(service, user: str, name: str, shared_weights) -> None:
    """A real trained-style file in the user's folder, as /train leaves it (a staged network)."""
    import shutil

    folder = service.trained.folder(Requester("slack", user))
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(shared_weights / "fast_neural_style" / "mosaic.pth", folder / f"{name}.pth")


def model_field(view):
    [block] = [b for b in view["blocks"] if b.get("block_id") == "model"]
    return [o["value"] for o in block["element"]["options"]]


async def test_the_run_form_offers_the_users_own_styles_and_only_theirs(slack, fake, service,
                                                                        shared_weights):
    give_style(service, "U1", "mine", shared_weights)
    await slack.command("/stylize", "method=fast model=mine")  # no image shared: the form opens
    await slack.command("/stylize", "method=fast", user="U2")
    mine, theirs = [c.args["view"] for c in await fake.wait_for(
        lambda: (lambda opened: opened if len(opened) == 2 else None)(fake.called("views.open")))]
    assert model_field(mine)[0] == "mine" and "candy" in model_field(mine)
    assert [b for b in mine["blocks"] if b.get("block_id") == "model"][0]["element"][
        "initial_option"]["value"] == "mine"
    assert "mine" not in model_field(theirs) and "candy" in model_field(theirs)

    content = [fake.add_file(png_bytes(sample_content(48)))]
    status, body = await slack.submit(theirs, user="U2", content=content, model="candy",
                                      options="model=mine")
    assert body["errors"] == {"options": "Model is given twice; keep only the Model field."}
    status, body = await slack.submit(theirs, user="U2", content=content, options="model=mine")
    assert "unknown model 'mine'" in body["errors"]["options"]
    status, body = await slack.submit(mine, content=content)
    assert status == 200 and not body
    [summary] = await fake.wait_for(fake.results, 60, "the result")
    ran = await service.result(summary["blocks"][2]["block_id"].removeprefix("result_"))
    assert ran.meta.options["model"] == "mine"


async def test_train_delete_and_cancel_are_the_users_own(slack, fake, service, shared_weights):
    give_style(service, "U1", "mine", shared_weights)
    _, listing = await slack.command("/train", "list")
    assert "Your styles: `mine`. `/train delete NAME` deletes one" in listing["text"]
    _, bobs = await slack.command("/train", "delete mine", user="U2")
    assert bobs["text"] == "⚠️ You have no style named 'mine'. You have no styles yet."
    _, deleted = await slack.command("/train", "delete mine")
    assert deleted["text"] == "Deleted your style `mine`."
    _, listing = await slack.command("/train", "")
    assert "You have no trained styles yet." in listing["text"]

    service.settings.training_steps = 10_000
    share_style(fake)
    await slack.command("/train", "long")
    training = await fake.wait_for(lambda: service.trainings.running(Requester("slack", "U1")), 60)
    _, cancelled = await slack.command("/cancel", "")
    assert cancelled["text"] == f"Cancelling job `{training.id}`."
    stopped = await fake.wait_for(lambda: [m for m in fake.posted.values()
                                           if "stopped" in (m.get("text") or "")], 60)
    assert stopped[0]["text"] == (f":warning: Training `long` stopped: cancelled by you (training "
                                  f"{training.id}); nothing was saved.")


async def test_train_a_style_shortcut_asks_for_a_name_then_trains(slack, fake, service,
                                                                  shared_weights):
    from engine.samples import sample_style

    style = fake.add_file(png_bytes(sample_style(48)), "swirl.png", user="U7")
    message = fake.share("C1", "U7", [style], text="this look")
    status, _ = await slack.shortcut(message, user="U1", callback_id=blocks.TRAIN_SHORTCUT_ID)
    assert status == 200
    view = (await fake.wait_for(lambda: fake.called("views.open"), what="the form"))[0].args["view"]
    assert view["callback_id"] == blocks.TRAIN_VIEW
    assert view["blocks"][0]["elements"][0]["text"] == "Learning the style of *swirl.png*"

    status, body = await slack.submit(view, name="candy")
    assert body == {"response_action": "errors",
                    "errors": {"name": "'candy' is a built-in style; choose another name."}}
    assert fake.downloads == []
    status, body = await slack.submit(view, name="swirly")
    assert status == 200 and not body
    [ready] = await fake.wait_for(lambda: ready_messages(fake), 120, "the ready message")
    assert ready["text"].startswith(":white_check_mark: <@U1>, your style `swirly` is ready")
    assert [d[0].rsplit("/", 1)[-1] for d in fake.downloads] == ["swirl.png"]
    assert service.trained_styles(Requester("slack", "U1")) == ["swirly"]
    assert service.trained_styles(Requester("slack", "U7")) == []  # the image's poster gets nothing


async def test_train_a_style_on_a_message_without_an_image_says_so(slack, fake):
    message = fake.share("C1", "U7", [fake.add_file(b"%PDF", "report.pdf", mimetype="application/pdf")])
    await slack.shortcut(message, callback_id=blocks.TRAIN_SHORTCUT_ID)
    texts = await fake.wait_for(fake.ephemeral_texts, what="the refusal")
    assert "That message has no image" in texts[0]
    assert not fake.called("views.open")
