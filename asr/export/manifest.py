"""What the export puts into manifest.json besides its own results (read and written by asr.runtime.bundle)."""

from __future__ import annotations

import importlib.metadata

PACKAGES = (
    "torch",
    "onnx",
    "onnxruntime",
    "onnx2tf",
    "tensorflow-cpu",
    "ai-edge-litert",
    "tflite-runtime",
    "tflite-micro",
)


def tool_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def tensor_info(details: dict, kind: str | None = None) -> dict:
    """Shape, dtype and quantization of an interpreter tensor, as JSON."""
    scale, zero_point = details["quantization"]
    info = {
        "shape": [int(d) for d in details["shape"]],
        "dtype": details["dtype"].__name__,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }
    if kind:
        info["kind"] = kind
    return info
