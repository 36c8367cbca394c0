"""AdaIN's networks (Huang & Belongie 2017): a VGG19 encoder up to relu4_1, the AdaIN
layer, and the decoder that inverts it.

The official weights (naoto0804/pytorch-AdaIN ``vgg_normalised.pth`` and ``decoder.pth``)
are state dicts of two ``nn.Sequential``s, keyed by module index ("0.weight", "2.bias").
``build_vgg_normalised`` and ``Decoder`` lay their modules out the same way so those
files load with ``strict=True``. The encoder may also be any VGG19 of ``engine.nets.vgg``
(the Caffe VGG19 works offline) once a decoder has been trained against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..catalogue import ADAIN_ENCODERS, ADAIN_VGG
from .checkpoint import WeightFormatError, load_strict, read_state_dict, read_torch

# Output channels of each VGG19 conv, by block (blocks 1-2 have two convs, 3-5 four).
_VGG_BLOCKS: list[list[int]] = [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4]

# In the official layout every conv is (ReflectionPad2d, Conv2d, ReLU) after a leading 1x1
# conv; these are the indices of relu1_1, relu2_1, relu3_1 and relu4_1.
_OFFICIAL_RELU_X_1 = (3, 10, 17, 30)
# The same layers in torchvision's vgg19().features layout (engine.nets.vgg).
_TORCHVISION_RELU_X_1 = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

TRAINED_FORMAT = "stylebot.adain-decoder"
EPS = 1e-5  # added to variances, as in the paper's reference code


def build_vgg_normalised(up_to_relu4_1: bool = True) -> nn.Sequential:
    """Untrained VGG19 in pytorch-AdaIN's ``vgg`` layout (53 modules, 31 up to relu4_1).

    Module 0 is a 1x1 conv that maps RGB 0..1 to the Caffe input convention; convs use
    reflection padding and pools round up (``ceil_mode``), as in the authors' Torch model.
    """
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    in_ch = 3
    for b, block in enumerate(_VGG_BLOCKS):
        if b > 0:
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        for out_ch in block:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3), nn.ReLU()]
            in_ch = out_ch
    if up_to_relu4_1:
        layers = layers[: _OFFICIAL_RELU_X_1[-1] + 1]
    return nn.Sequential(*layers)


class Decoder(nn.Sequential):
    """Mirror of the encoder up to relu4_1: 512 channels at 1/8 size back to RGB.

    Pools become nearest-neighbour upsampling, every conv is reflection-padded, and the
    last conv has no ReLU. Subclassing ``nn.Sequential`` keeps the official key names.
    ``encoder_name`` is the catalogue name of the VGG19 the weights were trained against.
    """

    # (out channels per conv) between upsamplings, from relu4_1 down to the image.
    PLAN: tuple[tuple[int, ...], ...] = ((256,), (256, 256, 256, 128), (128, 64), (64, 3))

    def __init__(self, encoder_name: str = ADAIN_VGG) -> None:
        layers: list[nn.Module] = []
        in_ch = 512
        for stage, convs in enumerate(self.PLAN):
            if stage > 0:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            for out_ch in convs:
                layers += [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3)]
                if out_ch != 3:
                    layers.append(nn.ReLU())
                in_ch = out_ch
        super().__init__(*layers)
        self.encoder_name = encoder_name


class Encoder(nn.Module):
    """A frozen VGG19 cut into four stages ending at relu1_1, relu2_1, relu3_1, relu4_1.

    ``forward`` gives relu4_1 (what AdaIN works on); ``features`` gives all four, which the
    training loss compares. ``norm`` turns RGB 0..1 into the weights' input convention
    (identity for vgg_normalised, whose first conv already does it).
    """

    def __init__(self, stages: Sequence[nn.Module], norm: nn.Module | None = None,
                 name: str = "") -> None:
        super().__init__()
        self.norm = norm if norm is not None else nn.Identity()
        self.stages = nn.ModuleList(stages)
        self.name = name
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        h = self.norm(x)
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        for stage in self.stages:
            h = stage(h)
        return h

    @classmethod
    def from_vgg_normalised(cls, vgg: nn.Sequential, name: str = ADAIN_VGG) -> "Encoder":
        modules = list(vgg)
        bounds = (0,) + tuple(i + 1 for i in _OFFICIAL_RELU_X_1)
        return cls([nn.Sequential(*modules[a:b]) for a, b in zip(bounds, bounds[1:])], name=name)

    @classmethod
    def from_vgg_features(cls, vgg, name: str) -> "Encoder":
        """From an ``engine.nets.vgg.VGGFeatures`` (torchvision layout, its own input norm)."""
        from .vgg import LAYER_INDEX

        modules = list(vgg.features)
        bounds = (0,) + tuple(LAYER_INDEX[n] + 1 for n in _TORCHVISION_RELU_X_1)
        return cls([nn.Sequential(*modules[a:b]) for a, b in zip(bounds, bounds[1:])],
                   norm=vgg.norm, name=name)


# --- AdaIN arithmetic -------------------------------------------------------------------

def channel_stats(flat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of ``[N, C, L]`` values; std includes ``eps`` in the variance.

    Unbiased variance as in the reference implementation the official decoder was
    trained with; a single value has variance 0 rather than NaN.
    """
    mean = flat.mean(dim=2, keepdim=True)
    var = flat.var(dim=2, keepdim=True, correction=1 if flat.shape[2] > 1 else 0)
    return mean, (var + eps).sqrt()


def mean_std(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of ``[N, C, H, W]`` features, shaped ``[N, C, 1, 1]``."""
    n, c = feat.shape[:2]
    mean, std = channel_stats(feat.reshape(n, c, -1), eps)
    return mean.view(n, c, 1, 1), std.view(n, c, 1, 1)


def adaptive_instance_norm(content: torch.Tensor, style_mean: torch.Tensor,
                           style_std: torch.Tensor, eps: float = EPS,
                           content_stats: tuple[torch.Tensor, torch.Tensor] | None = None
                           ) -> torch.Tensor:
    """AdaIN(x, y) = sigma(y) * (x - mu(x)) / sigma(x) + mu(y), per sample and channel.

    ``content_stats`` replaces mu(x), sigma(x) when they must come from part of ``content``
    (the cells of a padded image that see the image itself).
    """
    mean, std = content_stats if content_stats is not None else mean_std(content, eps)
    return (content - mean) / std * style_std + style_mean


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """AdaIN with the statistics taken from ``style`` features (same N and C)."""
    return adaptive_instance_norm(content, *mean_std(style, eps), eps=eps)


def coral(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``source`` ([3, H, W]) recoloured to ``target``'s colour mean and covariance (CORAL).

    The paper's colour control (section 7) as pytorch-AdaIN applies it to the style before
    encoding: each image's pixels are standardised per channel, their 3x3 scatter plus the
    identity is whitened for the source and coloured for the target (symmetric matrix
    square roots), then the target's channel std and mean are put back. Unbiased stds and
    the identity term follow the reference, so results agree with it.
    """
    def standardised(image: torch.Tensor):
        flat = image.reshape(3, -1).double()
        mean, std = flat.mean(1, keepdim=True), flat.std(1, keepdim=True)
        norm = (flat - mean) / std
        return norm, mean, std, norm @ norm.T + torch.eye(3, dtype=flat.dtype, device=flat.device)

    def sqrtm(m: torch.Tensor) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(m)
        return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T

    s_norm, _, _, s_scatter = standardised(source)
    _, t_mean, t_std, t_scatter = standardised(target)
    moved = sqrtm(t_scatter) @ torch.linalg.inv(sqrtm(s_scatter)) @ s_norm
    return (moved * t_std + t_mean).to(source.dtype).reshape(source.shape)


def masked_adain(content: torch.Tensor, regions: Sequence[torch.Tensor],
                 stats: Sequence[tuple[torch.Tensor, torch.Tensor]],
                 eps: float = EPS) -> torch.Tensor:
    """Spatial control (paper, section 7): each region of ``content`` ([1, C, H, W]) is
    normalised with its own statistics and given its own style's; ``regions`` are
    disjoint boolean ``[H, W]`` masks covering the image, ``stats`` one (mean, std) each."""
    out = content.clone()
    for region, (style_mean, style_std) in zip(regions, stats):
        if not bool(region.any()):
            continue
        values = content[:, :, region]  # [1, C, n]
        mean, std = channel_stats(values, eps)
        out[:, :, region] = (values - mean) / std * style_std.view(1, -1, 1) \
            + style_mean.view(1, -1, 1)
    return out


# --- loading ------------------------------------------------------------------------------

def load_vgg_normalised(path: Path) -> Encoder:
    """The official ``vgg_normalised.pth`` (all 53 modules' weights), kept up to relu4_1."""
    full = build_vgg_normalised(up_to_relu4_1=False)
    state = read_state_dict(path)
    load_strict(full, state, "pytorch-AdaIN's vgg_normalised layout")
    return Encoder.from_vgg_normalised(full[: _OFFICIAL_RELU_X_1[-1] + 1])


def load_decoder(state: dict[str, torch.Tensor], source: str = "decoder",
                 encoder_name: str = ADAIN_VGG) -> Decoder:
    decoder = Decoder(encoder_name)
    load_strict(decoder, state, "pytorch-AdaIN's decoder layout")
    decoder.requires_grad_(False)
    return decoder.eval()


def load_official_decoder(path: Path) -> Decoder:
    return load_decoder(read_state_dict(path), str(path))


def save_trained_decoder(path: Path, decoder: Decoder, *, encoder: str,
                         **meta: Any) -> None:
    """Write a decoder with the encoder it was trained against, atomically.

    The state dict keeps the official key layout, so ``torch.load(path)["state_dict"]``
    also loads into pytorch-AdaIN's own ``net.decoder``.
    """
    payload = {"format": TRAINED_FORMAT, "version": 1, "encoder": encoder,
               "state_dict": {k: v.detach().cpu().clone() for k, v in decoder.state_dict().items()},
               **meta}
    atomic_save(payload, path)


def read_trained_decoder(path: Path) -> dict[str, Any]:
    """A trained decoder's payload; raises ``ValueError`` if the file is not one."""
    payload = read_torch(path)
    if not isinstance(payload, dict) or payload.get("format") != TRAINED_FORMAT:
        raise WeightFormatError(f"{path} is not a Stylebot AdaIN decoder")
    if payload.get("encoder") not in ADAIN_ENCODERS:
        raise WeightFormatError(f"{path} names an unknown encoder {payload.get('encoder')!r}")
    return payload


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` whole or not at all (``engine.files.atomic_write``)."""
    from ..files import atomic_write

    atomic_write(path, lambda tmp: torch.save(obj, tmp))
