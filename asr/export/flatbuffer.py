"""Read a .tflite flatbuffer: its ops, constant bytes, and whether any constant is stored twice; write one back.

Uses the schema module bundled with ai-edge-litert (no TensorFlow import; the `tflite` package is not installed).
"""

from __future__ import annotations

import collections
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from asr.errors import InputError

OP_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
# A duplicate below this size is a shape vector or a small bias that the converter may legitimately repeat.
DUPLICATE_MIN_BYTES = 256


class DuplicateWeightsError(InputError):
    """A constant tensor is stored more than once: the tied weights were not kept tied."""


TYPE_NAMES = {code: name for name, code in vars(schema.TensorType).items() if not name.startswith("_")}


@dataclass
class OpInfo:
    name: str  # builtin op name (FULLY_CONNECTED) or custom code (FlexErf)
    outputs: list[str]  # output tensor names: the TensorFlow layer that produced the op
    inputs: list[str]  # input tensor types (INT8, INT32, ...), optional inputs left out
    row_scalar: bool = False  # SUB of one value per row of its first input ([.., R, C] - [.., R, 1]: x - mean)

    @property
    def kind(self) -> str:
        """What it computes on: int8 (the first input and every other non-INT32 one are int8; INT32: biases, shapes,
        axes; "int8 row scalar" for a SUB of one value per row), int32 (int32 inputs only: the WHILE loop's counter,
        i + 1 and i < depth), or other."""
        if self.inputs and self.inputs[0] == "INT8" and all(t in ("INT8", "INT32") for t in self.inputs):
            return "int8 row scalar" if self.row_scalar else "int8"
        return "int32" if self.inputs and all(t == "INT32" for t in self.inputs) else "other"


@dataclass
class TFLiteInfo:
    path: Path
    file_bytes: int
    constant_bytes: int
    num_buffers: int
    ops: list[OpInfo]
    duplicates: list[dict] = field(default_factory=list)  # constants stored more than once

    @property
    def op_counts(self) -> dict[str, int]:
        return dict(sorted(collections.Counter(op.name for op in self.ops).items()))

    @property
    def use_kinds(self) -> dict[str, set[str]]:
        """Each op type, with the kinds (OpInfo.kind) of its uses: TFLite Micro and the bundle have smaller kernels
        for an op used on int8 only, or on int8 and the loop counter."""
        kinds: dict[str, set[str]] = collections.defaultdict(set)
        for op in self.ops:
            kinds[op.name].add(op.kind)
        return dict(sorted(kinds.items()))

    def summary(self) -> dict:
        return {
            "file_bytes": self.file_bytes,
            "constant_bytes": self.constant_bytes,
            "constant_buffers": self.num_buffers,
            "ops": len(self.ops),
            "op_counts": self.op_counts,
            "duplicated_constants": self.duplicates,
        }


def load_model(path: Path) -> schema.ModelT:
    data = Path(path).read_bytes()
    if data[4:8] != b"TFL3":
        raise InputError(f"{path}: not a TFLite flatbuffer")
    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def pack(model: schema.ModelT, size_hint: int = 1024) -> bytes:
    """The flatbuffer bytes of `model` (after surgery on its object form)."""
    builder = flatbuffers.Builder(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def compact_for_micro(tflite: bytes) -> tuple[bytes, int]:
    """(the model in fewer bytes for TFLite Micro, zero points dropped).

    A per-channel quantized weight stores one int64 zero point per channel, all equal (0: weights are symmetric),
    about 10% of a small int8 model. TFLite Micro reads a one-value zero-point vector as every channel's
    (micro_allocator.cc, "a space-saving optimization"), so the MCU bundle keeps one value per tensor. Tensor names
    go too (TFLite Micro never reads them: 4.5 KB of a streaming step model). Full TFLite refuses such a model (it
    wants as many zero points as scales), so the .tflite files stay as converted.
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    dropped = 0
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            tensor.name = None
            zero_points = tensor.quantization.zeroPoint if tensor.quantization is not None else None
            if zero_points is not None and len(zero_points) > 1 and np.all(zero_points == zero_points[0]):
                dropped += len(zero_points) - 1
                tensor.quantization.zeroPoint = zero_points[:1]
    return pack(model, len(tflite)), dropped


def resource_variables(tflite: bytes) -> list[str]:
    """The shared names of the resource variables a model keeps (its VAR_HANDLE ops'), in order of first use."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    names = []
    for graph in model.subgraphs:
        for op in graph.operators:
            if op_name(model, op.opcodeIndex) == "VAR_HANDLE" and op.builtinOptions.sharedName not in names:
                names.append(op.builtinOptions.sharedName)
    return [n.decode() if isinstance(n, bytes) else n for n in names]


def op_name(model: schema.ModelT, opcode_index: int) -> str:
    code = model.operatorCodes[opcode_index]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)  # small codes live in the deprecated field
    if builtin == schema.BuiltinOperator.CUSTOM:
        return code.customCode.decode() if code.customCode else "CUSTOM"
    return OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def inspect_tflite(path: Path) -> TFLiteInfo:
    """Ops of every subgraph, total constant bytes, and constants whose bytes are stored more than once."""
    model = load_model(path)
    ops = [
        OpInfo(
            op_name(model, op.opcodeIndex),
            [(g.tensors[i].name or b"").decode() for i in op.outputs if i >= 0],
            [TYPE_NAMES[g.tensors[i].type] for i in op.inputs if i >= 0],
            op_name(model, op.opcodeIndex) == "SUB" and _row_scalar(g, op),
        )
        for g in model.subgraphs
        for op in (g.operators or [])
    ]
    by_digest: dict[str, list[int]] = collections.defaultdict(list)
    sizes: dict[int, int] = {}
    for index, buffer in enumerate(model.buffers):
        if buffer.data is not None and len(buffer.data):
            data = bytes(buffer.data)
            sizes[index] = len(data)
            by_digest[hashlib.sha1(data).hexdigest()].append(index)
        elif buffer.size:  # stored after the flatbuffer (models over 2 GB)
            sizes[index] = int(buffer.size)
    names = collections.defaultdict(list)
    for g in model.subgraphs:
        for t in g.tensors:
            names[t.buffer].append((t.name or b"").decode())
    duplicates = [
        {
            "bytes": sizes[idx[0]],
            "copies": len(idx),
            "tensors": [names[i][0] if names[i] else f"buffer {i}" for i in idx],
        }
        for idx in by_digest.values()
        if len(idx) > 1 and sizes[idx[0]] >= DUPLICATE_MIN_BYTES
    ]
    return TFLiteInfo(Path(path), Path(path).stat().st_size, sum(sizes.values()), len(sizes), ops, duplicates)


def _row_scalar(graph: schema.SubGraphT, op: schema.OperatorT) -> bool:
    """Whether a binary op's second input holds one value per row of its first ([.., R, C] and [.., R, 1])."""
    if len(op.inputs) != 2:
        return False
    a, b = ([int(d) for d in (graph.tensors[i].shape if graph.tensors[i].shape is not None else [])] for i in op.inputs)
    return len(a) == len(b) >= 1 and b[-1] == 1 and b[:-1] == a[:-1]


def check_stored_once(info: TFLiteInfo) -> None:
    """Raise DuplicateWeightsError if any constant of DUPLICATE_MIN_BYTES or more is stored twice."""
    if info.duplicates:
        worst = max(info.duplicates, key=lambda d: d["bytes"] * (d["copies"] - 1))
        wasted = sum(d["bytes"] * (d["copies"] - 1) for d in info.duplicates)
        raise DuplicateWeightsError(
            f"{info.path}: {len(info.duplicates)} constant(s) stored more than once ({wasted} bytes wasted); "
            f"e.g. {worst['bytes']} bytes x{worst['copies']} in tensors {worst['tensors']}. "
            "A tied weight must be stored once."
        )
