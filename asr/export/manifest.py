"""What the export records in the manifest besides its measurements: tensor quantization and tool versions."""

from __future__ import annotations

import importlib.metadata

from asr.runtime.bundle import TensorQuant

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


def tensor_info(details: dict) -> TensorQuant:
    """Shape, dtype and quantization of an interpreter tensor."""
    scale, zero_point = details["quantization"]
    return TensorQuant([int(d) for d in details["shape"]], details["dtype"].__name__, float(scale), int(zero_point))
