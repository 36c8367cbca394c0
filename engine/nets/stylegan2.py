"""StyleGAN2 generator (Karras et al. 2020) in the parameter layout of rosinality/stylegan2-pytorch.

StyleGAN-NADA and most of its tools (pSp, e4e, ReStyle) ship generators as rosinality
checkpoints: ``torch.save({"g_ema": state_dict, ...})``. This module is our own
implementation of that architecture whose ``state_dict`` keys and shapes match those files
exactly, so they load with ``strict=True``:

- mapping network ``style.{1..n_mlp}`` (PixelNorm, then equalised-lr linear + leaky ReLU);
- synthesis: learned 4x4 constant ``input``, ``conv1``/``to_rgb1``, then per resolution two
  ``convs`` (the first up-sampling) and one ``to_rgbs`` skip output;
- modulated/demodulated convolutions, per-layer noise injection with fixed ``noises`` buffers.

Resampling uses the paper's [1, 3, 3, 1] FIR filter through a plain-PyTorch ``upfirdn2d``
(zero-insert, pad, depthwise FIR, decimate), so no custom CUDA op is needed; it is the same
arithmetic as the reference's CPU path. The network is parametrised by size, style_dim,
n_mlp, channel_multiplier and channel_max (512 in every released model) so tests can build
tiny generators of the same architecture.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .checkpoint import WeightFormatError, load_strict, read_torch

BLUR_KERNEL = (1, 3, 3, 1)
LRELU_GAIN = math.sqrt(2.0)


def make_kernel(taps: Sequence[float]) -> torch.Tensor:
    """Separable 1-D taps -> normalised 2-D FIR kernel."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, FIR-filter each channel, then keep every ``down``-th pixel."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [p0, p1, p0, p1])  # negative values crop
    kh, kw = kernel.shape
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).view(1, 1, kh, kw).expand(c, 1, kh, kw)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Bias, leaky ReLU(0.2), then the sqrt(2) gain that keeps activations unit-variance."""
    shape = [1, -1] + [1] * (x.dim() - 2)
    return F.leaky_relu(x + bias.view(*shape), 0.2) * LRELU_GAIN


class PixelNorm(nn.Module):
    """Normalise each z to unit average square, as the mapping network expects."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weights scaled at run time, not at init)."""

    def __init__(self, in_dim: int, out_dim: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activate:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class Blur(nn.Module):
    """FIR low-pass applied after a transposed convolution (anti-aliased up-sampling)."""

    def __init__(self, pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(BLUR_KERNEL) * upsample_factor ** 2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR up-sampling of the RGB skip connection."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(BLUR_KERNEL) * factor ** 2)
        p = len(BLUR_KERNEL) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by the style, then demodulated (paper Eq. 1-3)."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, *,
                 demodulate: bool = True, upsample: bool = False) -> None:
        super().__init__()
        self.in_channel, self.out_channel = in_channel, out_channel
        self.kernel_size = kernel_size
        self.upsample = upsample
        self.demodulate = demodulate
        if upsample:
            factor = 2
            p = (len(BLUR_KERNEL) - factor) - (kernel_size - 1)
            self.blur = Blur(((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch, in_ch, height, width = x.shape
        k = self.kernel_size
        s = self.modulation(style).view(batch, 1, in_ch, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        x = x.reshape(1, batch * in_ch, height, width)
        if self.upsample:
            # Grouped transposed conv wants [groups * in, out, k, k].
            weight = weight.transpose(1, 2).reshape(batch * in_ch, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
            out = out.view(batch, self.out_channel, out.shape[-2], out.shape[-1])
            return self.blur(out)
        weight = weight.view(batch * self.out_channel, in_ch, k, k)
        out = F.conv2d(x, weight, padding=self.padding, groups=batch)
        return out.view(batch, self.out_channel, out.shape[-2], out.shape[-1])


class NoiseInjection(nn.Module):
    """Adds per-pixel noise with a learned per-layer strength (stochastic detail)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    """Modulated conv + noise + biased leaky ReLU: one 'layer' that one W+ entry controls."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, *,
                 upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: torch.Tensor, style: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB, added to the up-sampled skip image of the previous resolution."""

    def __init__(self, in_channel: int, style_dim: int, *, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor,
                skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


def channel_table(channel_multiplier: int, channel_max: int = 512) -> dict[int, int]:
    """Feature channels per resolution (config-f is channel_multiplier=2)."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier,
            128: 128 * channel_multiplier, 256: 64 * channel_multiplier,
            512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return {res: min(channel_max, ch) for res, ch in base.items()}


class Generator(nn.Module):
    """StyleGAN2 generator: z -> (mapping) -> w -> (synthesis with W+ codes) -> RGB in about -1..1."""

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 channel_max: int = 512, lr_mlp: float = 0.01) -> None:
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"generator size must be a power of two >= 8, got {size}")
        self.size = size
        self.style_dim = style_dim
        self.n_mlp = n_mlp
        self.channel_multiplier = channel_multiplier
        self.channel_max = channel_max
        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True) for _ in range(n_mlp)])
        self.channels = channel_table(channel_multiplier, channel_max)

        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)

        self.log_size = int(math.log2(size))
        self.num_layers = (self.log_size - 2) * 2 + 1  # styled convs, each with a noise input
        self.n_latent = self.log_size * 2 - 2  # W+ entries

        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = 2 ** ((layer_idx + 5) // 2)
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, res, res))
        in_channel = self.channels[4]
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2 ** i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel

    def config(self) -> dict[str, int]:
        return {"size": self.size, "style_dim": self.style_dim, "n_mlp": self.n_mlp,
                "channel_multiplier": self.channel_multiplier, "channel_max": self.channel_max}

    def styled_layers(self) -> list[StyledConv]:
        """The styled convs in W+ order: entry ``i`` of a W+ code modulates ``styled_layers()[i]``.

        (Entry ``n_latent - 1`` drives only the last ToRGB, which NADA keeps frozen.)
        """
        return [self.conv1, *self.convs]

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(z)

    def to_wplus(self, w: torch.Tensor) -> torch.Tensor:
        """[B, D] w codes -> [B, n_latent, D] (the same w for every layer)."""
        return w.unsqueeze(1).repeat(1, self.n_latent, 1)

    def fixed_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def forward(self, latent: torch.Tensor, *, noise: Sequence[torch.Tensor | None] | None = None,
                randomize_noise: bool = False) -> torch.Tensor:
        """Synthesis from W+ codes ``[B, n_latent, style_dim]`` (or W codes ``[B, style_dim]``)."""
        if latent.dim() == 2:
            latent = self.to_wplus(latent)
        if noise is None:
            noise = [None] * self.num_layers if randomize_noise else self.fixed_noise()
        out = self.input(latent.shape[0])
        out = self.conv1(out, latent[:, 0], noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for up_conv, conv, to_rgb, n1, n2 in zip(self.convs[::2], self.convs[1::2], self.to_rgbs,
                                                 noise[1::2], noise[2::2]):
            out = up_conv(out, latent[:, i], n1)
            out = conv(out, latent[:, i + 1], n2)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip


def config_from_state_dict(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Recover the constructor arguments from a rosinality ``g_ema`` state dict."""
    try:
        style_dim = int(state["style.1.weight"].shape[1])
        n_mlp = len({k.split(".")[1] for k in state if k.startswith("style.") and k.endswith(".weight")})
        n_rgbs = len({k.split(".")[1] for k in state if k.startswith("to_rgbs.")})
        size = 2 ** (n_rgbs + 2)
        channels = {4: int(state["input.input"].shape[1])}
        for j in range(n_rgbs):
            channels[2 ** (j + 3)] = int(state[f"convs.{2 * j}.conv.weight"].shape[1])
    except (KeyError, IndexError, AttributeError) as exc:
        raise WeightFormatError(f"not a StyleGAN2 (rosinality layout) generator: missing {exc}") from None
    channel_max = channels[4]
    for multiplier in (2, 1, 4):
        table = channel_table(multiplier, channel_max)
        if all(table[res] == ch for res, ch in channels.items()):
            return {"size": size, "style_dim": style_dim, "n_mlp": n_mlp,
                    "channel_multiplier": multiplier, "channel_max": channel_max}
    raise WeightFormatError(f"generator channels {channels} match no StyleGAN2 channel table")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a rosinality checkpoint safely; training checkpoints also pickle their argparse args."""
    return read_torch(path, safe_globals=[argparse.Namespace])


def load_generator(path: Path, architecture: dict[str, int] | None = None
                   ) -> tuple[Generator, torch.Tensor | None]:
    """The ``g_ema`` generator of a rosinality checkpoint (strict), and its ``latent_avg`` if stored.

    ``architecture`` (constructor arguments, from the catalogue entry) is what the file must
    hold: as in the reference, which builds ``Generator(size, 512, 8, 2)`` and loads into
    it, a file with another mapping depth or size is refused rather than loaded as another
    network.
    """
    checkpoint = read_checkpoint(Path(path))
    state = checkpoint.get("g_ema") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise WeightFormatError("no 'g_ema' entry; expected a rosinality StyleGAN2 checkpoint")
    config = config_from_state_dict(state)
    if architecture:
        names = {"n_mlp": "mapping layers (n_mlp)"}
        wrong = [f"{names.get(key, key)} {config.get(key)} (expected {value})"
                 for key, value in architecture.items() if config.get(key) != value]
        if wrong:
            raise WeightFormatError("a StyleGAN2 generator of another architecture: "
                                    + ", ".join(wrong))
    generator = load_strict(Generator(**config), state, "a StyleGAN2 (rosinality layout) generator")
    generator.requires_grad_(False).eval()
    latent_avg = checkpoint.get("latent_avg")
    if latent_avg is not None:
        latent_avg = latent_avg.float().reshape(1, -1)
    return generator, latent_avg
