"""Johnson et al. 2016 image transformation network, in the pytorch/examples layout.

"Perceptual Losses for Real-Time Style Transfer and Super-Resolution": a feed-forward
encoder (three convolutions), five residual blocks and a decoder (two nearest-neighbour
upsamplings + convolutions), with instance normalisation (Ulyanov et al.) instead of the
paper's batch norm. Module and attribute names follow pytorch/examples'
``fast_neural_style/transformer_net.py`` so its published ``.pth`` files, and the ones our
trainer writes, load with ``strict=True``.

Input: RGB in 0..255, ``[B, 3, H, W]``; output: RGB, roughly 0..255 (clamp before use).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .checkpoint import load_strict, read_state_dict

# InstanceNorm2d in old torch versions tracked running statistics; files saved then carry
# these buffers, which the current module does not have (pytorch/examples drops them too).
_STALE_NORM_KEY = re.compile(r"(^|\.)in\d+\.(running_mean|running_var|num_batches_tracked)$")


class ConvLayer(nn.Module):
    """Reflection padding + convolution: padding by reflection avoids dark borders."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with instance norm and an identity shortcut (He et al. 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        return out + x


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling then convolution, instead of a transposed convolution.

    Upsample-then-convolve avoids the checkerboard artefacts of fractionally strided
    convolutions (Odena et al. 2016), which is why pytorch/examples uses it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 upsample: int | None = None) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(nn.Module):
    """Encoder 32-64-128 channels (two stride-2 downsamplings), 5 residual blocks, decoder.

    Height and width should be multiples of 4 so the two downsamplings and upsamplings
    give back the input size; ``stylize`` pads and crops for any size.
    """

    def __init__(self) -> None:
        super().__init__()
        # Encoder.
        self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        # Residual blocks.
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        # Decoder.
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict without InstanceNorm running statistics left by old torch versions."""
    return {k: v for k, v in state.items() if not _STALE_NORM_KEY.search(k)}


def load_transformer_net(path: Path | str) -> TransformerNet:
    """A ``TransformerNet`` from a pytorch/examples-layout ``.pth`` (CPU, eval mode).

    ``weights_only=True`` because trained networks may come from users: a plain tensor
    dict is all this format needs, and it cannot run code on load.
    """
    net = TransformerNet()
    load_strict(net, clean_state_dict(read_state_dict(path)),
                "a TransformerNet (pytorch/examples layout)")
    net.requires_grad_(False)
    return net.eval()


def stylize(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Run ``net`` on RGB 0..255 images of any size (sides of 5 px or more), cropped back.

    The image goes in unpadded, as in pytorch/examples: the stride-2 convolutions round up
    and the upsamplings double, so the output (4 x ceil(side / 4)) covers the input and is
    cropped to it. Padding the input instead would put the padded rows into every instance
    norm's statistics and move the whole image.
    """
    height, width = images.shape[-2:]
    return net(images)[..., :height, :width]
