"""TFLite Micro on the host (the `tflite-micro` PyPI interpreter): op support, measured arena, inference.

Why probes run in child processes: TFLite Micro can crash the whole process, not raise, when given too small
an arena, and reports unsupported ops on the C++ stderr.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.export.flatbuffer import TFLiteInfo

ARENA_ALIGN = 16  # the arena is searched to this granularity (TFLM aligns its allocations to 16 bytes)
MAX_ARENA = 64 * 1024 * 1024
# MicroMutableOpResolver method names that plain CamelCase of the builtin name does not give.
RESOLVER_EXCEPTIONS = {"BATCH_MATMUL": "AddBatchMatMul"}


class UnsupportedOpError(InputError):
    """The model uses an op TFLite Micro does not implement; the message names it and where it came from."""


class MicroError(InputError):
    """TFLite Micro failed to load or run a model for another reason (a ValueError: the CLI prints it)."""


def resolver_method(op: str) -> str:
    """`AddFullyConnected` for FULLY_CONNECTED, `AddConv2D` for CONV_2D: the MicroMutableOpResolver call."""
    if op in RESOLVER_EXCEPTIONS:
        return RESOLVER_EXCEPTIONS[op]
    parts = [p if re.fullmatch(r"\d+D", p) else p.capitalize() for p in op.split("_")]
    return "Add" + "".join(parts)


def probe(path: Path, arena_size: int) -> tuple[bool, str]:
    """(ok, stderr) of constructing and invoking `path` once in a child process with `arena_size` bytes."""
    proc = subprocess.run(
        [sys.executable, "-m", "asr.export.micro", str(path), str(arena_size)],
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0, proc.stderr + proc.stdout


def check_supported(info: TFLiteInfo, onnx_path: Path | None = None) -> None:
    """Raise UnsupportedOpError naming each op TFLite Micro lacks, its layers and the ONNX nodes behind it."""
    ok, log = probe(info.path, MAX_ARENA)
    if ok:
        return
    missing = re.findall(r"Didn't find op for (?:builtin|custom) opcode '([^']+)'", log)
    if not missing:
        raise MicroError(f"{info.path}: TFLite Micro cannot run it:\n{_tail(log)}")
    lines = []
    for name in dict.fromkeys(missing):
        layers = [out for op in info.ops if op.name == name for out in op.outputs][:5]
        nodes = []
        if onnx_path is not None:
            from asr.export.onnx import onnx_nodes_of_type

            # Flex ops are TensorFlow ops (FlexErf <- ONNX Erf); builtins are named like their ONNX type (GELU <- Gelu).
            nodes = onnx_nodes_of_type(onnx_path, name.removeprefix("Flex").replace("_", ""))[:5]
        where = f"ONNX nodes {nodes}" if nodes else "no ONNX node of the same type (a fused pattern)"
        lines.append(f"  {name}: produced by TFLite layers {layers}; {where}")
    raise UnsupportedOpError(
        f"{info.path}: TFLite Micro has no kernel for {len(lines)} op(s):\n"
        + "\n".join(lines)
        + "\nReplace the PyTorch layer that makes it (e.g. GELU -> SiLU) and export again."
    )


def measure_arena(path: Path) -> int:
    """The smallest arena (bytes, to ARENA_ALIGN) with which TFLite Micro constructs and runs `path`."""
    hi = 4096
    while not probe(path, hi)[0]:
        if hi >= MAX_ARENA:
            raise MicroError(
                f"{path}: TFLite Micro fails even with a {MAX_ARENA}-byte arena:\n{_tail(probe(path, hi)[1])}"
            )
        hi *= 2
    lo = hi // 2 if hi > 4096 else 0  # lo fails (or is 0), hi succeeds
    while hi - lo > ARENA_ALIGN:
        mid = (lo + hi) // 2 // ARENA_ALIGN * ARENA_ALIGN
        if mid <= lo:
            break
        ok, _ = probe(path, mid)
        lo, hi = (lo, mid) if ok else (mid, hi)
    return hi


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _probe_main(path: str, arena_size: str) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(path, arena_size=int(arena_size))
    for i in range(len(Interpreter(model_path=path).get_input_details())):  # a streaming step also takes its caches
        details = interpreter.get_input_details(i)
        interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), i)
    interpreter.invoke()


if __name__ == "__main__":
    _probe_main(*sys.argv[1:3])
