"""`stylebot train adain`: a few CPU steps on tiny images against the real Caffe VGG19
(offline, from the staged weights), checkpoints, resume, and the trained decoder loading
back into the adain method."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from engine.errors import UserError, WeightsMissing
from engine.images import to_image, to_tensor
from engine.methods import get_method
from engine.methods.adain import load_encoder, pad_to_min_side, trained_decoders
from engine.methods.base import MethodInput
from engine.nets import adain as nets
from engine.samples import sample_content, sample_style
from engine.settings import EngineSettings
from engine.training import TRAINER_PATHS
from engine.training import adain as trainer
from engine.training.images import StepBatches, find_images
from engine.weights import WeightStore

# Tiny networks: on a shared 2-core machine a second torch thread only spins.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def data(tmp_path) -> tuple[Path, Path]:
    content, style = tmp_path / "content", tmp_path / "style"
    (content / "sub").mkdir(parents=True)
    style.mkdir()
    photo = sample_content(64)
    photo.save(content / "a.png")
    ImageOps.mirror(photo).resize((80, 64)).save(content / "sub" / "b.jpg")
    (content / "notes.txt").write_text("not an image")
    (content / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # skipped with a warning
    art = sample_style(64)
    art.save(style / "a.png")
    ImageOps.invert(art).rotate(90).save(style / "b.webp")
    return content, style


def read_loss_log(path: Path) -> list[dict[str, float]]:
    """The trainer's CSV loss log as numbers, one dict per step."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def parse(data, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    trainer.add_arguments(parser)
    content, style = data
    return parser.parse_args(["--content-dir", str(content), "--style-dir", str(style),
                              "--image-size", "32", "--batch-size", "2", *extra])


def test_registered_and_defaults(data):
    assert TRAINER_PATHS["adain"] == "engine.training.adain"
    args = parse(data)
    assert (args.encoder, args.lr, args.style_weight, args.content_weight) == ("vgg19-caffe", 1e-4, 10.0, 1.0)
    assert args.name is None and args.resume is False and args.checkpoint_every == 1000


@pytest.mark.slow
def test_loss_falls_and_the_decoder_loads_into_the_method(settings, shared_weights, data,
                                                          make_context):
    args = parse(data, "--max-steps", "12", "--checkpoint-every", "5", "--name", "tiny")
    assert trainer.run(args, settings) == 0

    paths = trainer.Paths.for_name(settings, "tiny")
    losses = read_loss_log(paths.losses)
    assert [int(r["step"]) for r in losses] == list(range(1, 13))
    first, last = losses[0], losses[-4:]
    assert np.mean([r["loss"] for r in last]) < 0.5 * first["loss"]
    assert np.mean([r["style_loss"] for r in last]) < 0.5 * first["style_loss"]
    assert losses[-1]["lr"] == pytest.approx(1e-4 / (1 + 5e-5 * 11))

    payload = nets.read_trained_decoder(paths.decoder)
    assert payload["encoder"] == "vgg19-caffe" and payload["steps"] == 12
    assert torch.load(paths.checkpoint, weights_only=True)["step"] == 12
    assert trained_decoders(settings) == ["tiny"]

    # The method picks it by name, pairs it with the Caffe VGG19 and decodes with it.
    method = get_method("adain")
    content = sample_content(64).resize((48, 40))
    inp = MethodInput(content=content, styles=[sample_style(64)], seed=0, size=48,
                      options=method.options.validate({"decoder": "tiny", "alpha": 0}, method="adain"))
    method.check(inp, settings)
    assert method.weight_names(inp.options) == []
    ctx = make_context()
    out = method.run(inp, ctx)
    assert any(k.startswith("adain:encoder:vgg19-caffe:") for k in ctx.models.keys())

    encoder = load_encoder(WeightStore.from_settings(settings), "vgg19-caffe")
    decoder = nets.load_decoder(payload["state_dict"], encoder_name="vgg19-caffe")
    with torch.no_grad():
        x = to_tensor(content)
        expected = to_image(decoder(encoder(pad_to_min_side(x)))[..., :40, :48])
    assert out.size == (48, 40)
    assert np.abs(np.asarray(out, np.int16) - np.asarray(expected, np.int16)).max() <= 1


def test_resume_continues_exactly_where_it_stopped(settings, shared_weights, data):
    common = ("--batch-size", "1", "--checkpoint-every", "2")
    assert trainer.run(parse(data, *common, "--name", "straight", "--max-steps", "4"), settings) == 0
    assert trainer.run(parse(data, *common, "--name", "split", "--max-steps", "2"), settings) == 0
    assert nets.read_trained_decoder(trainer.Paths.for_name(settings, "split").decoder)["steps"] == 2
    assert trainer.run(parse(data, *common, "--name", "split", "--max-steps", "4", "--resume"),
                       settings) == 0

    straight = nets.read_trained_decoder(trainer.Paths.for_name(settings, "straight").decoder)
    split = nets.read_trained_decoder(trainer.Paths.for_name(settings, "split").decoder)
    assert split["steps"] == 4
    for key, value in straight["state_dict"].items():
        torch.testing.assert_close(split["state_dict"][key], value, rtol=1e-5, atol=1e-7)
    log = read_loss_log(trainer.Paths.for_name(settings, "split").losses)
    assert [int(r["step"]) for r in log] == [1, 2, 3, 4]
    assert [r["loss"] for r in log] == pytest.approx(
        [r["loss"] for r in read_loss_log(trainer.Paths.for_name(settings, "straight").losses)],
        rel=1e-4)


def test_trains_against_the_official_encoder_layout(tmp_path, data):
    """--encoder adain-vgg loads pytorch-AdaIN's vgg_normalised.pth through the store."""
    weights_dir = tmp_path / "weights"
    (weights_dir / "adain").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(nets.build_vgg_normalised(up_to_relu4_1=False).state_dict(),
               weights_dir / "adain" / "vgg_normalised.pth")
    settings = EngineSettings(home=tmp_path / "home", weights_dir=weights_dir, allow_downloads=False,
                        device="cpu")
    assert trainer.run(parse(data, "--encoder", "adain-vgg", "--max-steps", "1"), settings) == 0
    payload = nets.read_trained_decoder(trainer.Paths.for_name(settings, "adain-vgg").decoder)
    assert payload["encoder"] == "adain-vgg" and payload["steps"] == 1


def test_empty_or_missing_folders_are_user_errors(settings, data, tmp_path):
    empty = tmp_path / "empty"
    (empty / "deeper").mkdir(parents=True)
    (empty / "readme.md").write_text("no images here")
    content, style = data
    with pytest.raises(UserError, match=r"^--content-dir .*empty holds no images"):
        trainer.run(parse((empty, style)), settings)
    with pytest.raises(UserError, match=r"^--style-dir .*nowhere is not a folder"):
        trainer.run(parse((content, tmp_path / "nowhere")), settings)


def test_unreadable_folder_is_a_user_error(settings, shared_weights, tmp_path, data):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not really a png")
    with pytest.raises(UserError, match="could not be read"):
        trainer.run(parse((broken, data[1]), "--max-steps", "1"), settings)


@pytest.mark.parametrize("extra, words", [
    (("--max-steps", "0"), "--max-steps must be at least 1"),
    (("--image-size", "30"), "--image-size must be at least 32"),
    (("--image-size", "36"), "multiple of 8"),
    (("--lr", "0"), "--lr must be above 0"),
    (("--style-weight", "-1"), "--style-weight must be a number >= 0"),
    (("--name", "../escape"), "--name '../escape' must be"),
    (("--name", "official"), "not 'official'"),
])
def test_bad_arguments_are_user_errors(settings, data, extra, words):
    with pytest.raises(UserError) as info:
        trainer.run(parse(data, *extra), settings)
    assert words in str(info.value)


def test_no_silent_overwrite_and_resume_needs_a_checkpoint(settings, shared_weights, data):
    with pytest.raises(UserError, match="No checkpoint to resume for 'x'"):
        trainer.run(parse(data, "--name", "x", "--resume", "--max-steps", "1"), settings)
    assert trainer.run(parse(data, "--name", "x", "--max-steps", "1"), settings) == 0
    with pytest.raises(UserError, match="already exists.*--resume"):
        trainer.run(parse(data, "--name", "x", "--max-steps", "1"), settings)
    with pytest.raises(UserError, match="trained for --encoder vgg19-caffe, not adain-vgg"):
        trainer.run(parse(data, "--name", "x", "--resume", "--encoder", "adain-vgg",
                          "--max-steps", "2"), settings)


def test_missing_encoder_weights_name_the_fetch(settings, data):
    with pytest.raises(WeightsMissing, match="vgg19-torchvision.*stylebot weights fetch"):
        trainer.run(parse(data, "--encoder", "vgg19-torchvision", "--max-steps", "1"), settings)


def test_step_batches_are_a_function_of_seed_and_step(settings, data):
    contents = find_images(data[0], "--content-dir")
    styles = find_images(data[1], "--style-dir")
    assert [p.name for p in contents] == ["a.png", "broken.png", "b.jpg"]
    batches = StepBatches(contents, styles, batch_size=3, image_size=32, seed=7,
                                  settings=settings)
    c1, s1 = batches[5]
    c2, s2 = batches[5]
    assert c1.shape == s1.shape == (3, 3, 32, 32)
    assert torch.equal(c1, c2) and torch.equal(s1, s2)
    assert not torch.equal(batches[6][0], c1)
    assert 0.0 <= float(c1.min()) and float(c1.max()) <= 1.0
    assert isinstance(to_image(c1[0]), Image.Image)
