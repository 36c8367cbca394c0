"""Write a torch Magenta network's weights as TFLite / ONNX graphs, the way the releases store them.

Tests use these to check the readers without the staged files: randomly initialised
networks are saved with TF layer names, TF kernel layouts and per-channel quantisation
(int8 with scales and zero points, or fp16 behind a DEQUANTIZE op), then loaded back
through the real loading code. The graphs hold only the convolutions, which is all the
readers look at; they are not meant to be executed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn


def conv_layers(model: nn.Module) -> dict[str, tuple[np.ndarray, np.ndarray, int, bool]]:
    """TF layer name -> (torch-layout weight, bias, stride, depthwise) for every layer."""
    layers = {}
    for tf_name, path in model.tf_layers().items():
        module = model.get_submodule(path)
        weight = module.weight.detach().numpy().astype(np.float32)
        if isinstance(module, nn.Linear):  # stored as a 1x1 conv on the style vector
            weight = weight[:, :, None, None]
            stride, depthwise = 1, False
        else:
            stride, depthwise = module.stride[0], module.groups > 1
        layers[tf_name] = (weight, module.bias.detach().numpy().astype(np.float32), stride, depthwise)
    return layers


def quantise(values: np.ndarray, axis: int, zero_points: bool, bits: int = 8):
    """Per-channel affine quantisation along ``axis``: (q, scale, zero_point)."""
    moved = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
    qmax = 2 ** (bits - 1) - 1
    zero = (np.arange(len(moved)) % 7 - 3) if zero_points else np.zeros(len(moved), dtype=int)
    scale = np.abs(moved).max(axis=1) / (qmax - 3) + 1e-12  # leave room for the zero point
    shape = [1] * values.ndim
    shape[axis] = -1
    q = np.round(values / scale.reshape(shape)) + zero.reshape(shape)
    dtype = np.int8 if bits == 8 else np.int32
    return np.clip(q, -qmax - 1, qmax).astype(dtype), scale.astype(np.float32), zero


def write_tflite(path: Path, model: nn.Module, weights: str = "int8") -> Path:
    """Save ``model``'s convolutions as a TFLite flatbuffer with int8 or fp16 weights."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S

    buffers, tensors, operators = [S.BufferT()], [], []

    def tensor(name: str, dtype: int, shape, data: np.ndarray | None = None, quant=None) -> int:
        buffer = 0
        if data is not None:
            buffers.append(S.BufferT(data=np.frombuffer(data.tobytes(), dtype=np.uint8)))
            buffer = len(buffers) - 1
        tensors.append(S.TensorT(shape=list(shape), type=dtype, buffer=buffer, name=name.encode(),
                                 quantization=quant))
        return len(tensors) - 1

    def quant(scale, zero, axis) -> "S.QuantizationParametersT":
        return S.QuantizationParametersT(scale=list(map(float, scale)), zeroPoint=list(map(int, zero)),
                                         quantizedDimension=axis)

    codes = [S.OperatorCodeT(deprecatedBuiltinCode=c, builtinCode=c)
             for c in (S.BuiltinOperator.CONV_2D, S.BuiltinOperator.DEPTHWISE_CONV_2D,
                       S.BuiltinOperator.DEQUANTIZE)]
    for tf_name, (weight, bias, stride, depthwise) in conv_layers(model).items():
        # TFLite layouts: conv [out, kh, kw, in], depthwise [1, kh, kw, channels].
        tf_weight = weight.transpose(1, 2, 3, 0) if depthwise else weight.transpose(0, 2, 3, 1)
        axis = 3 if depthwise else 0
        w_name = f"{tf_name}/{'depthwise_weights' if depthwise else 'weights'}"
        if weights == "int8":
            q, scale, zero = quantise(tf_weight, axis, zero_points=False)
            w = tensor(w_name, S.TensorType.INT8, q.shape, q, quant(scale, zero, axis))
            qb, b_scale, _ = quantise(bias, 0, zero_points=False, bits=32)
            b = tensor(f"{tf_name}/Conv2D_bias", S.TensorType.INT32, qb.shape, qb,
                       quant(b_scale, np.zeros(len(bias)), 0))
        else:
            half = tensor(w_name, S.TensorType.FLOAT16, tf_weight.shape, tf_weight.astype(np.float16))
            w = tensor(f"{w_name}_dequantize", S.TensorType.FLOAT32, tf_weight.shape)
            operators.append(S.OperatorT(opcodeIndex=2, inputs=[half], outputs=[w]))
            b = tensor(f"{tf_name}/Conv2D_bias", S.TensorType.FLOAT32, bias.shape, bias)
        x = tensor(f"{tf_name}/input", S.TensorType.FLOAT32, [1, 8, 8, weight.shape[1]])
        y = tensor(f"{tf_name}/output", S.TensorType.FLOAT32, [1, 8, 8, weight.shape[0]])
        options_type = S.BuiltinOptions.DepthwiseConv2DOptions if depthwise else S.BuiltinOptions.Conv2DOptions
        options = (S.DepthwiseConv2DOptionsT(strideW=stride, strideH=stride, depthMultiplier=1) if depthwise
                   else S.Conv2DOptionsT(strideW=stride, strideH=stride))
        operators.append(S.OperatorT(opcodeIndex=1 if depthwise else 0, inputs=[x, w, b], outputs=[y],
                                     builtinOptionsType=options_type, builtinOptions=options))
    graph = S.SubGraphT(tensors=tensors, operators=operators, inputs=[], outputs=[], name=b"main")
    flat = S.ModelT(version=3, operatorCodes=codes, subgraphs=[graph], buffers=buffers,
                    description=b"test graph")
    builder = flatbuffers.Builder(1024)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def write_onnx(path: Path, model: nn.Module) -> Path:
    """Save ``model``'s convolutions as int8 QDQ ONNX with per-channel non-zero zero points."""
    import onnx
    from onnx import helper, numpy_helper

    inits, nodes = [], []
    for tf_name, (weight, bias, stride, depthwise) in conv_layers(model).items():
        w_name = f"{tf_name}/{'depthwise_weights' if depthwise else 'weights'}"
        q, scale, zero = quantise(weight, 0, zero_points=True)
        qb, b_scale, _ = quantise(bias, 0, zero_points=False, bits=32)
        inits += [numpy_helper.from_array(q, w_name),
                  numpy_helper.from_array(scale, f"{w_name}/scale"),
                  numpy_helper.from_array(zero.astype(np.int8), f"{w_name}/zero_point"),
                  numpy_helper.from_array(qb, f"{tf_name}/Conv2D_bias"),
                  numpy_helper.from_array(b_scale, f"{tf_name}/bias_scale"),
                  numpy_helper.from_array(np.zeros(len(bias), np.int32), f"{tf_name}/bias_zero")]
        nodes += [
            helper.make_node("DequantizeLinear", [w_name, f"{w_name}/scale", f"{w_name}/zero_point"],
                             [f"{w_name}_dequant"], axis=0),
            helper.make_node("DequantizeLinear", [f"{tf_name}/Conv2D_bias", f"{tf_name}/bias_scale",
                                                  f"{tf_name}/bias_zero"], [f"{tf_name}/bias_dequant"], axis=0),
            helper.make_node("Conv", ["input", f"{w_name}_dequant", f"{tf_name}/bias_dequant"],
                             [f"{tf_name}/output"], strides=[stride, stride],
                             group=weight.shape[0] if depthwise else 1),
        ]
    graph = helper.make_graph(nodes, "test", [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT,
                                                                            None)], [], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), str(path))
    return path
