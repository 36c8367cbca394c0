"""/train through the service: a real tiny training, per-user models, limits and refusals.

The training is `stylebot train fast`'s own code with the real VGG19 loss network, on four
32-pixel photos made here, for a few steps; it is skipped without the staged weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.errors import UserError
from engine.events import Done
from engine.request import ImageUpload, Requester, StyleRequest
from engine.samples import sample_content, sample_style
from stylebot.service import StyleService
from stylebot.training_jobs import TrainingFailed, TrainingProgress, TrainingReady, TrainingWaiting
from tests.bot.helpers import png_bytes

ALICE = Requester("discord", "111")
BOB = Requester("discord", "222")
NOT_SET_UP = ("Training styles is not set up on this server (it has no photos to learn from); "
              "ask its operator.")


def content_photos(folder):
    """Four noisy 40-pixel variants of the sample landscape: a tiny content set."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        base = np.asarray(sample_content(40), np.float32)
        noisy = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"photo{i}.png")
    return folder


@pytest.fixture
def train_settings(settings, tmp_path):
    return settings.model_copy(update=dict(
        training_images=content_photos(tmp_path / "photos"), allow_cpu_training=True,
        training_steps=3, training_image_size=32, training_batch_size=2, cpu_runtime="torch",
        chat_rate_limit=50))


async def open_service(settings):
    return await StyleService.open(settings)


@pytest.fixture
async def service(train_settings):
    svc = await open_service(train_settings)
    yield svc
    await svc.close(grace_s=1)


def style_upload() -> ImageUpload:
    return ImageUpload(png_bytes(sample_style(48)), "swirl.png")


def fast(requester: Requester, model: str) -> StyleRequest:
    return StyleRequest(method="fast", content=ImageUpload(png_bytes(sample_content(48)), "c.png"),
                        requester=requester, options={"model": model})


async def train(service, requester=ALICE, name="mine"):
    handle = await service.train(requester, style_upload(), name)
    events = [event async for event in handle.events()]
    return handle, events


@pytest.mark.slow
async def test_a_trained_style_is_its_trainers_alone(service, shared_weights, train_settings):
    handle, events = await train(service)
    steps = [e.step for e in events if isinstance(e, TrainingProgress)]
    assert steps[-1] == 3 and steps == sorted(steps)
    assert all(e.total == 3 for e in events if isinstance(e, TrainingProgress))
    assert events[-1] == TrainingReady("mine", 3)

    folder = train_settings.home / "styles" / "discord" / "111"
    assert sorted(p.name for p in folder.iterdir()) == ["index.json", "mine.pth"]  # no checkpoints
    index = json.loads((folder / "index.json").read_text())
    assert index["mine"]["steps"] == 3 and index["mine"]["style_image"] == "swirl.png"

    # The owner sees it first among the models and can use it.
    assert service.model_choices(ALICE, "fast")[0] == "mine"
    assert service.model_choices(ALICE, "fast", "MI") == ["mine"]
    done = await (await service.submit(fast(ALICE, "mine"))).wait()
    assert isinstance(done, Done) and done.meta.options["model"] == "mine"
    content = np.asarray(sample_content(48), np.float32)
    assert np.abs(np.asarray(done.image, np.float32) - content).mean() > 1

    # Anyone else: not listed, and naming it reads exactly like naming nothing.
    assert "mine" not in service.model_choices(BOB, "fast")
    with pytest.raises(UserError) as theirs:
        service.check("fast", {"model": "mine"}, requester=BOB)
    with pytest.raises(UserError) as nothing:
        service.check("fast", {"model": "nosuch"}, requester=BOB)
    assert str(theirs.value) == str(nothing.value).replace("nosuch", "mine")
    with pytest.raises(UserError) as submitted:
        await service.submit(fast(BOB, "mine"))
    assert str(submitted.value) == str(theirs.value)


@pytest.mark.slow
async def test_limits_count_and_bytes_per_user(train_settings, shared_weights):
    service = await open_service(train_settings.model_copy(update={"trained_styles_per_user": 1}))
    try:
        _, events = await train(service)
        assert isinstance(events[-1], TrainingReady)
        with pytest.raises(UserError, match=r"^You have 1 trained style \(the limit is 1\); "):
            service.check_training(ALICE, "another")
        service.check_training(BOB, "another")  # Bob has none yet
        with pytest.raises(UserError, match="You already have a style named 'mine'"):
            service.trainings.styles.check_new(ALICE, "mine")
    finally:
        await service.close(grace_s=1)
    service = await open_service(train_settings.model_copy(update={"trained_mb_per_user": 10.0}))
    try:
        with pytest.raises(UserError, match=r"take 6\.\d MB and another needs 6\.8 MB; the limit "
                                            r"is 10 MB per user\.$"):
            service.check_training(ALICE, "another")
    finally:
        await service.close(grace_s=1)


async def first_step(handle) -> None:
    async for event in handle.events():
        if isinstance(event, TrainingProgress) and event.step >= 1:
            return


async def test_one_training_per_user_and_the_rest_wait_in_line(train_settings, shared_weights):
    carol = Requester("discord", "333")
    service = await open_service(train_settings.model_copy(update={"training_steps": 10_000}))
    try:
        handle = await service.train(ALICE, style_upload(), "long")
        with pytest.raises(UserError, match="^You are already training 'long'; wait until"):
            service.check_training(ALICE, "other")
        bobs = await service.train(BOB, style_upload(), "other")  # one at a time: Bob waits
        carols = await service.train(carol, style_upload(), "third")
        assert bobs.history[-1] == TrainingWaiting(1) and carols.history[-1] == TrainingWaiting(2)
        with pytest.raises(UserError, match="^You have no jobs queued or running"):
            service.cancel(Requester("discord", "444"))  # nobody else's training to stop
        await first_step(handle)
        assert service.cancel(ALICE) == handle.id
        final = await handle.wait()
        assert final == TrainingFailed(f"cancelled by you (training {handle.id}); nothing was saved.")
        await first_step(bobs)  # Alice's slot went to Bob, and Carol moved up
        assert carols.history[-1] == TrainingWaiting(1)
        service.cancel(carol)
        assert isinstance(await carols.wait(), TrainingFailed)  # left the line without training
        again = await service.train(ALICE, style_upload(), "long")  # free to start another
        assert again.history[-1] == TrainingWaiting(1)
    finally:
        await service.close(grace_s=1)  # stops the training at its next step
    for stopped in (bobs, again):
        final = await stopped.wait()
        assert isinstance(final, TrainingFailed) and "restarting" in final.message
    assert not (train_settings.home / "styles" / "discord" / "111" / "long.pth").exists()
    assert not (train_settings.home / "styles" / "discord" / "111" / "long.ckpt").exists()


async def test_refused_on_a_cpu_unless_the_operator_allows_it(train_settings):
    service = await open_service(train_settings.model_copy(update={"allow_cpu_training": False}))
    try:
        with pytest.raises(UserError) as info:
            await service.train(ALICE, style_upload(), "mine")
        assert str(info.value) == (
            "Training a style needs a GPU and this server has none (its operator can allow slow "
            "CPU training with STYLEBOT_ALLOW_CPU_TRAINING).")
    finally:
        await service.close(grace_s=1)


@pytest.mark.parametrize("folder", ["unset", "missing", "empty"])
async def test_no_content_photos_is_one_line_for_the_user(train_settings, tmp_path, folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos")
    images = {"unset": None, "missing": tmp_path / "nowhere", "empty": empty}[folder]
    service = await open_service(train_settings.model_copy(update={"training_images": images}))
    try:
        with pytest.raises(UserError) as info:
            service.check_training(ALICE, "mine")
        assert str(info.value) == NOT_SET_UP
    finally:
        await service.close(grace_s=1)


@pytest.mark.parametrize("name, message", [
    ("candy", "'candy' is a built-in style"),
    ("26:3", "must be 1-64 letters"),
    ("../../etc", "must be 1-64 letters"),
    ("a b", "must be 1-64 letters"),
    ("Delete", "a word the commands use"),
])
async def test_bad_names_are_refused(service, name, message):
    with pytest.raises(UserError, match=message):
        service.check_training(ALICE, name)


@pytest.mark.security
async def test_a_user_id_that_is_no_folder_name_cannot_train_or_reach_files(service, train_settings):
    sneaky = Requester("discord", "../111")
    with pytest.raises(UserError, match="cannot name a folder"):
        service.check_training(sneaky, "mine")
    assert service.trained.folder(sneaky) is None
    assert service.model_choices(sneaky, "fast") == service.model_choices(BOB, "fast")


async def test_a_broken_style_image_is_refused_before_training(service):
    with pytest.raises(UserError, match="style image"):
        await service.train(ALICE, ImageUpload(b"not an image", "x.png"), "mine")
    assert service.trainings.running(ALICE) is None


@pytest.mark.parametrize("folder", ["unset", "missing", "empty", "photos"])
def test_start_warns_when_the_training_photos_folder_is_unusable(train_settings, tmp_path,
                                                                  folder):
    from stylebot.checks import validate_settings

    empty = tmp_path / "empty"
    empty.mkdir()
    images = {"unset": None, "missing": tmp_path / "nowhere", "empty": empty,
              "photos": train_settings.training_images}[folder]
    warnings = validate_settings(train_settings.model_copy(update={"training_images": images}),
                                 [], check_device=False)
    training = [w for w in warnings if "STYLEBOT_TRAINING_IMAGES" in w]
    if folder in ("unset", "photos"):
        assert training == []  # off by choice, or usable
    else:
        [line] = training
        reason = "is not a folder" if folder == "missing" else "holds no images"
        assert line.startswith(f"/train is off: STYLEBOT_TRAINING_IMAGES {images} {reason}")
        assert line.endswith("; point it at a folder of photos (docs/training.md).")


@pytest.mark.security
async def test_a_user_deletes_only_their_own_styles(service, shared_weights):
    import shutil

    folder = service.trained.folder(ALICE)
    folder.mkdir(parents=True)
    shutil.copy(shared_weights / "fast_neural_style" / "mosaic.pth", folder / "mine.pth")
    service.trained.record(ALICE, "mine", steps=3, source="swirl.png")
    with pytest.raises(UserError) as bobs:
        service.delete_trained_style(BOB, "mine")
    assert str(bobs.value) == "You have no style named 'mine'. You have no styles yet."
    assert service.trained_styles(ALICE) == ["mine"]
    service.delete_trained_style(ALICE, "mine")
    assert service.trained_styles(ALICE) == [] and "mine" not in service.model_choices(ALICE, "fast")
    assert json.loads((folder / "index.json").read_text()) == {}


def steps_done(handle) -> int:
    last = handle.history[-1]
    return last.step if isinstance(last, TrainingProgress) else 0


@pytest.mark.slow
async def test_a_stylize_job_runs_during_a_real_training_which_then_goes_on(train_settings,
                                                                             shared_weights):
    """The real trainer and the real queue share the device through the turns: no deadlock,
    the job is done while the training waits, and the training carries on after it."""
    service = await open_service(train_settings.model_copy(update={"training_steps": 10_000}))
    try:
        handle = await service.train(ALICE, style_upload(), "long")
        await first_step(handle)
        done = await (await service.submit(fast(BOB, "mosaic"))).wait()
        assert isinstance(done, Done)
        after_job = steps_done(handle)
        async for event in handle.events():
            if isinstance(event, TrainingProgress) and event.step > after_job:
                break
        assert handle.final is None
    finally:
        await service.close(grace_s=1)
