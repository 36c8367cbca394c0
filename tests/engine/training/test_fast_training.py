"""`stylebot train fast` on a few tiny images, with the real VGG19 loss network."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import UserError
from engine.methods import get_method
from engine.methods.base import MethodInput, RunContext
from engine.methods.fast import trained_path
from engine.models import ModelCache
from engine.nets.transformer_net import load_transformer_net
from engine.samples import sample_content, sample_style
from engine.training import fast as trainer
from engine.weights import WeightStore


@pytest.fixture
def data(tmp_path, shared_weights) -> dict[str, Path]:
    """Four noisy variants of the sample landscape, one broken file, and a style image."""
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        base = np.asarray(sample_content(40 + 8 * i), np.float32)
        noisy = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        folder = images / "sub" if i % 2 else images  # found recursively
        Image.fromarray(noisy).save(folder / f"photo{i}.png")
    (images / "broken.jpg").write_bytes(b"not a jpeg at all")
    (images / "notes.txt").write_text("ignored: not an image")
    style = tmp_path / "swirl style.png"
    sample_style(48).save(style)
    return {"images": images, "style": style}


def cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stylebot train fast")
    trainer.add_arguments(parser)
    return parser.parse_args(list(argv))


def tiny_args(data, *extra: str) -> argparse.Namespace:
    return cli("--style", str(data["style"]), "--images", str(data["images"]), "--name", "swirl",
               "--image-size", "32", "--batch-size", "2", "--epochs", "50", "--lr", "3e-3",
               "--device", "cpu", *extra)


def latest_checkpoint(settings, name="swirl") -> dict:
    files = trainer.checkpoint_files(trained_path(settings, name).with_suffix(".ckpt"))
    assert files, "no checkpoint written"
    return torch.load(files[-1], weights_only=True)


@pytest.mark.slow
def test_training_lowers_the_loss_and_saves_a_usable_network(data, settings):
    assert trainer.run(tiny_args(data, "--max-steps", "6", "--checkpoint-every", "3"),
                       settings) == 0

    checkpoint = latest_checkpoint(settings)
    assert checkpoint["step"] == 6
    totals = [h["total"] for h in checkpoint["history"]]
    assert len(totals) == 6
    assert np.mean(totals[-2:]) < 0.95 * np.mean(totals[:2]), totals
    assert {"content", "style"} <= set(checkpoint["history"][0])
    assert checkpoint["config"]["image_size"] == 32

    # The final file has the pytorch/examples layout: it loads strict, and by name in `fast`.
    final = trained_path(settings, "swirl")
    net = load_transformer_net(final)
    for key, value in net.state_dict().items():
        assert torch.equal(value, checkpoint["model"][key].float())
    method = get_method("fast")
    assert method.weight_names({"model": "swirl"}) == []
    content = sample_content(64)
    inp = MethodInput(content=content, options=method.options.validate({"model": "swirl"},
                                                                        method="fast"),
                      seed=0, size=64)
    ctx = RunContext(device="cpu", settings=settings, weights=WeightStore.from_settings(settings),
                     models=ModelCache(1_000_000_000))
    method.check(inp, settings)
    out = method.run(inp, ctx)
    assert out.size == content.size
    assert np.abs(np.asarray(out, np.float32) - np.asarray(content, np.float32)).mean() > 1


@pytest.mark.slow
def test_resume_continues_where_the_checkpoint_left_off(data, settings, tmp_path):
    # 4 images in batches of 2: step 3 starts the second epoch, with a new shuffle.
    assert trainer.run(tiny_args(data, "--max-steps", "2", "--checkpoint-every", "2"),
                       settings) == 0
    first = latest_checkpoint(settings)
    assert first["step"] == 2

    assert trainer.run(tiny_args(data, "--max-steps", "4", "--checkpoint-every", "2",
                                 "--resume"), settings) == 0
    resumed = latest_checkpoint(settings)
    assert resumed["step"] == 4
    assert resumed["history"][:2] == first["history"]
    assert [h["step"] for h in resumed["history"]] == [1, 2, 3, 4]

    # Same batches, optimiser state and RNG: identical to one uninterrupted run of 4 steps.
    other = settings.model_copy(update={"home": tmp_path / "other-home"})
    straight = trainer.train(trainer.TrainConfig.from_args(
        tiny_args(data, "--max-steps", "4", "--checkpoint-every", "100")), other)
    assert straight.step == 4
    for key, value in load_transformer_net(straight.path).state_dict().items():
        assert torch.allclose(value, resumed["model"][key], atol=1e-5), key


@pytest.mark.slow
def test_only_the_newest_checkpoints_are_kept(data, settings):
    trainer.run(tiny_args(data, "--max-steps", "4", "--checkpoint-every", "1"), settings)
    files = trainer.checkpoint_files(trained_path(settings, "swirl").with_suffix(".ckpt"))
    assert [f.name for f in files] == ["step-00000002.pt", "step-00000003.pt", "step-00000004.pt"]


def test_existing_name_needs_resume_and_resume_needs_a_checkpoint(data, settings):
    with pytest.raises(UserError, match="no checkpoint"):
        trainer.run(tiny_args(data, "--max-steps", "1", "--resume"), settings)
    trainer.run(tiny_args(data, "--max-steps", "1"), settings)
    with pytest.raises(UserError, match="--resume"):
        trainer.run(tiny_args(data, "--max-steps", "1"), settings)


def test_default_name_comes_from_the_style_file(data, settings):
    args = cli("--style", str(data["style"]), "--images", str(data["images"]),
               "--image-size", "32", "--max-steps", "1", "--device", "cpu")
    assert trainer.run(args, settings) == 0
    assert trained_path(settings, "swirl_style").is_file()


@pytest.mark.parametrize("change, message", [
    ({"images": "empty"}, "holds no images"),
    ({"images": "missing"}, "is not a folder"),
    ({"style": "garbage"}, "--style"),
    ({"style": "missing"}, "does not exist"),
    ({"name": "candy"}, "built-in"),
    ({"name": "../escape"}, "--name"),
    ({"batch_size": "0"}, "--batch-size"),
    ({"lr": "-1"}, "--lr"),
    ({"device": "tpu"}, "--device"),
])
def test_bad_input_is_a_one_line_user_error(change, message, data, settings, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no pictures here")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")
    images = {"empty": empty, "missing": tmp_path / "nowhere"}.get(change.get("images"),
                                                                   data["images"])
    style = {"garbage": garbage, "missing": tmp_path / "nope.png"}.get(change.get("style"),
                                                                       data["style"])
    argv = ["--style", str(style), "--images", str(images), "--image-size", "32",
            "--max-steps", "1", "--name", change.get("name", "ok"),
            "--batch-size", change.get("batch_size", "2"), "--lr", change.get("lr", "1e-3"),
            "--device", change.get("device", "cpu")]
    with pytest.raises(UserError) as info:
        trainer.run(cli(*argv), settings)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not trained_path(settings, change.get("name", "ok")).exists()


def test_required_flags(capsys):
    with pytest.raises(SystemExit):
        cli("--images", "somewhere")
    assert "--style" in capsys.readouterr().err


def test_damaged_checkpoint_is_a_user_error_on_resume(data, settings):
    folder = trained_path(settings, "swirl").with_suffix(".ckpt")
    folder.mkdir(parents=True)
    (folder / "step-00000007.pt").write_bytes(b"half a checkpoint")
    with pytest.raises(UserError, match="cannot be loaded"):
        trainer.run(tiny_args(data, "--max-steps", "8", "--resume"), settings)
