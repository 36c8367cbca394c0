"""Ghiasi et al. 2017, "Exploring the structure of a real-time, arbitrary neural artistic
stylization network" (Magenta's arbitrary-image-stylization-v1-256), in torch.

Two networks, named as in the paper:
- the style prediction network P: MobileNetV2 features of the style image, averaged over
  space and projected to a 100-d style vector S;
- the style transfer network T: a contracting conv stack, five residual blocks and an
  expanding stack, where every normalisation after the contracting part is a conditional
  instance norm whose per-channel scale and shift are affine functions of S.

The weights come from the released inference graphs (see ``graph_weights``); layer names
below are the TensorFlow scopes of those graphs. T is fully convolutional, so it runs at
any size whose sides are a multiple of 4 (``stylize`` pads and crops to get there).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .graph_weights import ConvParams, GraphFormatError, read_conv_params

STYLE_DIM = 100
PREDICTOR_SIZE = 256  # the side the style prediction network was trained and released at
NORM_EPS = 1e-5  # the conditional instance norm's epsilon, as stored in both graphs
SIZE_MULTIPLE = 4  # two stride-2 convolutions in T's contracting part

# MobileNetV2's bottleneck blocks: (expansion, channels, repeats, first stride).
MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


# --- style prediction network P -----------------------------------------------------------

class SameConv2d(nn.Conv2d):
    """A conv with TensorFlow's "SAME" padding: for stride 2 the extra pixel goes bottom/right.

    torch's symmetric ``padding=1`` would shift every stride-2 layer by half a pixel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return self._conv_forward(F.pad(x, pads), self.weight, self.bias)


class InvertedResidual(nn.Module):
    """MobileNetV2's bottleneck block: 1x1 expand, 3x3 depthwise, linear 1x1 projection."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        self.expand = SameConv2d(in_ch, hidden, 1) if expansion != 1 else None
        self.depthwise = SameConv2d(hidden, hidden, 3, stride, groups=hidden)
        self.project = SameConv2d(hidden, out_ch, 1)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self.expand(x)) if self.expand is not None else x
        h = self.project(F.relu6(self.depthwise(h)))
        return x + h if self.residual else h


class StylePredictor(nn.Module):
    """P: style image (RGB 0..1, ``PREDICTOR_SIZE`` square) -> style vector ``[B, 100]``.

    Batch norms are folded into the conv biases in the released graph, as here.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(3, 32, 3, 2)
        blocks, channels = [], 32
        for expansion, out_ch, repeats, stride in MOBILENET_V2:
            for i in range(repeats):
                blocks.append(InvertedResidual(channels, out_ch, stride if i == 0 else 1, expansion))
                channels = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.head = SameConv2d(channels, 1280, 1)
        self.bottleneck = nn.Conv2d(1280, STYLE_DIM, 1)

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self.stem(style))
        for block in self.blocks:
            h = block(h)
        h = F.relu6(self.head(h)).mean(dim=(2, 3), keepdim=True)
        return self.bottleneck(h).flatten(1)

    def tf_layers(self) -> dict[str, str]:
        """TensorFlow scope -> torch module path, for loading the released graph."""
        layers = {"MobilenetV2/Conv": "stem", "MobilenetV2/Conv_1": "head",
                  "mobilenet_conv/Conv": "bottleneck"}
        for i, block in enumerate(self.blocks):
            scope = "MobilenetV2/expanded_conv" + (f"_{i}" if i else "")
            parts = ("expand", "depthwise", "project") if block.expand is not None else ("depthwise", "project")
            layers.update({f"{scope}/{part}": f"blocks.{i}.{part}" for part in parts})
        return layers


# --- style transfer network T -------------------------------------------------------------

class ConvLayer(nn.Module):
    """Mirror padding then a "VALID" conv, as every conv in T is built."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = kernel // 2
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, [self.pad] * 4, mode="reflect"))


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose scale (gamma) and shift (beta) are predicted from the style vector."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.beta = nn.Linear(STYLE_DIM, channels)
        self.gamma = nn.Linear(STYLE_DIM, channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma = self.gamma(style)[:, :, None, None]
        beta = self.beta(style)[:, :, None, None]
        return F.instance_norm(x, eps=NORM_EPS) * gamma + beta


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.norm1 = ConvLayer(channels, channels, 3), ConditionalInstanceNorm(channels)
        self.conv2, self.norm2 = ConvLayer(channels, channels, 3), ConditionalInstanceNorm(channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x), style))
        return x + self.norm2(self.conv2(h), style)


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling, then conv and conditional instance norm (no deconvolution)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, upsample: int) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = ConvLayer(in_ch, out_ch, kernel)
        self.norm = ConditionalInstanceNorm(out_ch)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.norm(self.conv(x), style)


class StyleTransformer(nn.Module):
    """T: content (RGB 0..1, sides a multiple of 4) and style vector -> stylised RGB 0..1.

    ``width`` is the first layer's channel count: 8 in the released mobile model (the
    paper's network at a quarter of its width), 32 for the full one.
    """

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        w = width
        self.contract = nn.ModuleList([ConvLayer(3, w, 9), ConvLayer(w, 2 * w, 3, 2),
                                       ConvLayer(2 * w, 4 * w, 3, 2)])
        self.residual = nn.ModuleList([ResidualBlock(4 * w) for _ in range(5)])
        self.expand = nn.ModuleList([UpsampleConvLayer(4 * w, 2 * w, 3, 2),
                                     UpsampleConvLayer(2 * w, w, 3, 2),
                                     UpsampleConvLayer(w, 3, 9, 1)])

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = content
        for layer in self.contract:  # batch norm folded into the conv bias
            h = F.relu(layer(h))
        for block in self.residual:
            h = block(h, style)
        h = F.relu(self.expand[0](h, style))
        h = F.relu(self.expand[1](h, style))
        return torch.sigmoid(self.expand[2](h, style))

    def tf_layers(self) -> dict[str, str]:
        layers = {f"transformer/contract/conv{i + 1}": f"contract.{i}.conv" for i in range(3)}
        for i in range(5):
            for j in (1, 2):
                scope = f"transformer/residual/residual{i + 1}/conv{j}"
                layers[scope] = f"residual.{i}.conv{j}.conv"
                layers[f"style_params/{scope}/StyleNorm/Conv"] = f"residual.{i}.norm{j}.beta"
                layers[f"style_params/{scope}/StyleNorm/Conv_1"] = f"residual.{i}.norm{j}.gamma"
        for i in range(3):
            scope = f"transformer/expand/conv{i + 1}/conv"
            layers[scope] = f"expand.{i}.conv.conv"
            layers[f"style_params/{scope}/StyleNorm/Conv"] = f"expand.{i}.norm.beta"
            layers[f"style_params/{scope}/StyleNorm/Conv_1"] = f"expand.{i}.norm.gamma"
        return layers


def stylize(transformer: StyleTransformer, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Run T on content of any size (sides of 5 px or more), cropped back.

    T's stride-2 convolutions round up and its upsamplings double, so the output
    (``SIZE_MULTIPLE`` x ceil(side / 4)) covers the input, as when the original graph runs
    an image at its own size. Padding the content instead would put the padded rows into
    every conditional instance norm's statistics and move the whole image.
    """
    height, width = content.shape[-2:]
    return transformer(content, style)[..., :height, :width]


# --- loading the released graphs ----------------------------------------------------------

def load_predictor(path: str | Path) -> StylePredictor:
    """P with the weights of a style-predict graph (``.tflite`` or ``.onnx``)."""
    return _load(StylePredictor(), read_conv_params(path), Path(path).name)


def load_transformer(path: str | Path) -> StyleTransformer:
    """T with the weights of a style-transfer graph (``.tflite`` or ``.onnx``)."""
    convs = read_conv_params(path)
    first = convs.get("transformer/contract/conv1")
    if first is None:
        raise GraphFormatError(f"{Path(path).name} is not a Magenta style-transfer network")
    return _load(StyleTransformer(width=first.weight.shape[0]), convs, Path(path).name)


def _load(model: nn.Module, convs: dict[str, ConvParams], source: str) -> nn.Module:
    """Copy every graph convolution onto its torch layer; any mismatch is an error."""
    layers = model.tf_layers()
    missing = sorted(set(layers) - set(convs))
    unexpected = sorted(set(convs) - set(layers))
    if missing or unexpected:
        raise GraphFormatError(f"{source} does not match {type(model).__name__}: "
                               f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    state = {}
    for tf_name, path in layers.items():
        params, target = convs[tf_name], model.get_submodule(path)
        if isinstance(target, nn.Conv2d) and target.stride[0] != params.stride:
            raise GraphFormatError(f"{source}: {tf_name} has stride {params.stride}, "
                                   f"expected {target.stride[0]}")
        weight = torch.from_numpy(params.weight)
        if isinstance(target, nn.Linear):  # the graph's 1x1 conv on the [1, 1, 1, 100] vector
            weight = weight.reshape(weight.shape[0], -1)
        state[f"{path}.weight"] = weight
        state[f"{path}.bias"] = torch.from_numpy(params.bias)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatch
        raise GraphFormatError(f"{source} does not match {type(model).__name__}: {exc}") from None
    return model.eval().requires_grad_(False)
