"""Reading a ``.tflite`` flatbuffer: its constant tensors, their roles and dtypes.

Conversion and running live in :mod:`cielib.quantize`; this module only reads the
file, with the flatbuffer schema that ai-edge-litert ships (no interpreter, no
TensorFlow), so that a model's stored weights can be checked and counted exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "INSPECT_COLUMNS",
    "TFLITE_IDENTIFIER",
    "check_bytes",
    "inspect",
    "io_dtypes",
    "read_model",
]

#: Ops whose constant inputs are layer weights: op name -> (weights slot, bias slot).
_WEIGHT_OPS = {
    "CONV_2D": (1, 2),
    "DEPTHWISE_CONV_2D": (1, 2),
    "CONV_3D": (1, 2),
    "FULLY_CONNECTED": (1, 2),
    "TRANSPOSE_CONV": (1, 3),
    "BATCH_MATMUL": (1, None),
}

#: The file identifier every TFLite flatbuffer carries at bytes 4..8.
TFLITE_IDENTIFIER = b"TFL3"


def check_bytes(tflite_bytes: Any) -> bytes:
    """``tflite_bytes`` as ``bytes`` if it is a TFLite flatbuffer, checked before any parsing.

    Raises:
        TypeError: not bytes-like. ValueError: no ``TFL3`` identifier.
    """
    if not isinstance(tflite_bytes, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"tflite_bytes must be bytes (a .tflite flatbuffer), got "
            f"{type(tflite_bytes).__name__}"
        )
    data = bytes(tflite_bytes)
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ValueError(
            "tflite_bytes is not a TFLite flatbuffer (no 'TFL3' identifier at byte 4)"
        )
    return data



def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def _tensor_dtype(schema, code: int) -> str:
    return _enum_names(schema.TensorType).get(code, f"type{code}").lower()


def read_model(tflite_bytes: bytes) -> dict[str, Any]:
    """Tensors, ops, inputs and outputs of every subgraph, read from the flatbuffer.

    Reading the flatbuffer (with the schema ai-edge-litert ships) rather than an
    interpreter's tensor details is what tells constants apart reliably: a constant
    tensor points at a non-empty buffer, and op inputs say which constant is a filter
    and which a bias. An interpreter hides this once its XNNPACK delegate has taken
    the graph over.
    """
    schema = _schema()
    buf = bytearray(tflite_bytes)
    model = schema.Model.GetRootAs(buf, 0)
    op_names = _enum_names(schema.BuiltinOperator)
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        # Builtin codes >= 127 live in BuiltinCode; older ones in DeprecatedBuiltinCode.
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        codes.append(op_names.get(code, f"OP{code}"))

    def buffer_bytes(index: int) -> int:
        if index <= 0 or index >= model.BuffersLength():
            return 0
        b = model.Buffers(index)
        n = b.DataLength()
        if n == 0 and b.Offset() > 1:  # large models keep data outside the flatbuffer
            n = int(b.Size())
        return int(n)

    subgraphs = []
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        tensors = []
        for t in range(sg.TensorsLength()):
            ten = sg.Tensors(t)
            shape = tuple(int(ten.Shape(j)) for j in range(ten.ShapeLength()))
            q = ten.Quantization()
            n_scales = 0 if q is None else int(q.ScaleLength())
            scale = float(q.Scale(0)) if n_scales == 1 else None
            zero_point = int(q.ZeroPoint(0)) if n_scales == 1 and q.ZeroPointLength() else None
            tensors.append(
                {
                    "index": t,
                    "name": (ten.Name() or b"").decode("utf-8", "replace"),
                    "dtype": _tensor_dtype(schema, ten.Type()),
                    "shape": shape,
                    "size": int(np.prod(shape)) if shape else 1,
                    "nbytes": buffer_bytes(ten.Buffer()),
                    "is_variable": bool(ten.IsVariable()),
                    "n_scales": n_scales,
                    "scale": scale,
                    "zero_point": zero_point,
                }
            )
        ops = []
        for o in range(sg.OperatorsLength()):
            op = sg.Operators(o)
            ops.append(
                {
                    "op": codes[op.OpcodeIndex()],
                    "inputs": [int(op.Inputs(j)) for j in range(op.InputsLength())],
                    "outputs": [int(op.Outputs(j)) for j in range(op.OutputsLength())],
                }
            )
        subgraphs.append(
            {
                "tensors": tensors,
                "ops": ops,
                "inputs": [int(sg.Inputs(j)) for j in range(sg.InputsLength())],
                "outputs": [int(sg.Outputs(j)) for j in range(sg.OutputsLength())],
            }
        )
    if not subgraphs:
        raise ValueError("the TFLite flatbuffer has no subgraphs")
    return {"subgraphs": subgraphs}


def _roles(sg: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """Map constant tensor index -> (role, consuming op).

    A constant feeding the filter slot of a conv/dense op is ``weights``, the bias slot
    ``bias``; a constant that reaches that slot through a ``DEQUANTIZE`` op (how
    float16 models store weights) gets the same role.
    """
    producer_of: dict[int, dict[str, Any]] = {}
    for op in sg["ops"]:
        for t in op["outputs"]:
            producer_of[t] = op
    roles: dict[int, tuple[str, str]] = {}
    consumers: dict[int, str] = {}
    for op in sg["ops"]:
        for t in op["inputs"]:
            if t >= 0:
                consumers.setdefault(t, op["op"])
        slots = _WEIGHT_OPS.get(op["op"])
        if slots is None:
            continue
        for role, slot in zip(("weights", "bias"), slots):
            if slot is None or slot >= len(op["inputs"]):
                continue
            t = op["inputs"][slot]
            if t < 0:
                continue
            roles[t] = (role, op["op"])
            src = producer_of.get(t)
            if src is not None and src["op"] == "DEQUANTIZE" and src["inputs"]:
                roles[src["inputs"][0]] = (role, op["op"])
    for t, op_name in consumers.items():
        roles.setdefault(t, ("other", op_name))
    return roles


#: Columns of :func:`inspect`.
INSPECT_COLUMNS = [
    "subgraph", "index", "name", "role", "op", "dtype", "shape", "size", "nbytes",
    "n_scales",
]


def inspect(tflite_bytes: bytes) -> pd.DataFrame:
    """One row per constant tensor (weights, biases, other constants) of a model.

    Constants are the tensors with data in the flatbuffer itself; they are read from
    the flatbuffer with the schema that ai-edge-litert ships, because an interpreter's
    tensor details cannot tell constants apart once the XNNPACK delegate has taken
    over the graph.

    Args:
        tflite_bytes: A ``.tflite`` flatbuffer.

    Returns:
        A DataFrame with columns ``subgraph``, ``index``, ``name``, ``role``
        (``"weights"``: a conv/dense filter, ``"bias"``, or ``"other"`` such as a
        reshape's target shape), ``op`` (the op that consumes it; for float16 weights
        the conv/dense op behind their ``DEQUANTIZE``), ``dtype`` (``"float32"``,
        ``"float16"``, ``"int8"``, ``"int32"``, ...), ``shape`` (tuple), ``size``
        (elements), ``nbytes`` (stored bytes) and ``n_scales`` (quantization scales:
        0 = not quantized, 1 = per tensor, more = per channel).

    Raises:
        TypeError, ValueError: ``tflite_bytes`` is not a TFLite flatbuffer.
    """
    parsed = read_model(check_bytes(tflite_bytes))
    rows = []
    for s, sg in enumerate(parsed["subgraphs"]):
        roles = _roles(sg)
        for t in sg["tensors"]:
            if t["nbytes"] == 0 or t["is_variable"]:
                continue
            role, op = roles.get(t["index"], ("other", ""))
            rows.append({"subgraph": s, **{k: t[k] for k in INSPECT_COLUMNS[1:] if k in t},
                         "role": role, "op": op})
    return pd.DataFrame(rows, columns=INSPECT_COLUMNS)


def io_dtypes(parsed: dict[str, Any]) -> tuple[str, str]:
    """Dtypes of the first subgraph's inputs and outputs (comma-joined if several)."""
    sg = parsed["subgraphs"][0]
    tensors = sg["tensors"]
    ins = {tensors[i]["dtype"] for i in sg["inputs"]}
    outs = {tensors[i]["dtype"] for i in sg["outputs"]}
    return ",".join(sorted(ins)), ",".join(sorted(outs))
