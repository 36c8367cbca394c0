"""The graph readers and loaders on tiny random networks saved in the released layouts.

These run without the staged weights: they prove dequantisation (scales, zero points,
per-channel axes), kernel layouts and the fp16 path, through the real loading code.
"""

from __future__ import annotations

import pytest
import torch

from engine.nets.graph_weights import read_conv_params
from engine.nets.magenta import StylePredictor, StyleTransformer, load_predictor, load_transformer, stylize

from .graph_writers import conv_layers, write_onnx, write_tflite


def assert_within_quantisation_step(original: torch.nn.Module, loaded: torch.nn.Module) -> None:
    """Every loaded tensor is within half a quantisation step (per channel) of the original."""
    ours, theirs = original.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    for name, value in ours.items():
        flat = value.reshape(value.shape[0], -1)
        diff = (theirs[name].reshape(flat.shape) - flat).abs().amax(dim=1)
        step = flat.abs().amax(dim=1) / 124  # the writers' int8 scale
        assert torch.all(diff <= 0.51 * step + 1e-7), name


@pytest.fixture
def transformer() -> StyleTransformer:
    torch.manual_seed(0)
    model = StyleTransformer(width=4)
    with torch.no_grad():  # non-zero biases, so bias dequantisation is exercised too
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.uniform_(-0.5, 0.5)
    return model.eval()


def test_tflite_int8_transformer_loads_within_a_quantisation_step(tmp_path, transformer):
    path = write_tflite(tmp_path / "transfer.tflite", transformer, weights="int8")
    loaded = load_transformer(path)
    assert_within_quantisation_step(transformer, loaded)
    content, style = torch.rand(1, 3, 32, 40), torch.randn(1, 100)
    with torch.inference_mode():
        a, b = stylize(transformer, content, style), stylize(loaded, content, style)
    assert (a - b).abs().mean() < 0.02


def test_tflite_fp16_weights_load_exactly_as_rounded(tmp_path, transformer):
    path = write_tflite(tmp_path / "transfer_fp16.tflite", transformer, weights="fp16")
    loaded = load_transformer(path)
    for name, value in transformer.state_dict().items():
        expected = value.half().float() if name.endswith("weight") else value
        assert torch.equal(loaded.state_dict()[name], expected), name


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_int8_predictor_loads_within_a_quantisation_step(tmp_path, fmt):
    """ONNX with per-channel non-zero zero points; TFLite with depthwise [1, kh, kw, ch] kernels."""
    torch.manual_seed(1)
    predictor = StylePredictor().eval()
    if fmt == "onnx":
        path = write_onnx(tmp_path / "predict.onnx", predictor)
    else:
        path = write_tflite(tmp_path / "predict.tflite", predictor, weights="int8")
    dw = read_conv_params(path)["MobilenetV2/expanded_conv_1/depthwise"]
    assert dw.depthwise and dw.stride == 2 and dw.weight.shape == (96, 1, 3, 3)
    loaded = load_predictor(path)
    assert_within_quantisation_step(predictor, loaded)
    style = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        a, b = predictor(style), loaded(style)
    assert a.shape == (2, 100)
    assert torch.corrcoef(torch.stack([a.ravel(), b.ravel()]))[0, 1] > 0.99


def test_a_graph_of_another_network_is_refused(tmp_path, transformer):
    from engine.nets.graph_weights import GraphFormatError

    path = write_tflite(tmp_path / "transfer.tflite", transformer)
    with pytest.raises(GraphFormatError, match="does not match StylePredictor"):
        load_predictor(path)
    assert set(read_conv_params(path)) == set(conv_layers(transformer))
