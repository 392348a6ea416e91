"""The export pipeline: checkpoint -> TFLite float32/int8 (by a route) -> checks -> manifest (+ MCU bundle).

The routes (asr.export.routes) differ only in how the two .tflite files are made; the checks, parity, measured
arena, accuracy, manifest and bundle below are the same for both.

Everything is written into a hidden staging directory next to OUTDIR and renamed into place at the end,
so an interrupted or failed export never leaves an OUTDIR that looks complete.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from asr.config import Config
from asr.errors import InputError, MissingError
from asr.export import flatbuffer, micro, parity, stream
from asr.export.loop import LoopExportError, stream_spec
from asr.export.manifest import tensor_info, tool_versions
from asr.export.mcu import micro_model, write_bundle
from asr.export.routes import CONVERTERS, choose_route
from asr.runtime.bundle import MCU_DIR, Manifest, StreamSteps
from asr.runtime.host_interpreters import io_details
from asr.runtime.interpreter import quantize

# Float32 constants beyond this many times 4 bytes per unique parameter mean a weight was stored more than once
# in a transformed form (a duplicate with identical bytes is caught exactly by flatbuffer.check_stored_once).
MAX_FLOAT_BYTES_PER_PARAMETER = 1.5 * 4


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A fresh directory that replaces `out_dir` only if the block completes."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (
        not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / "manifest.json").exists())
    ):
        raise FileExistsError(f"{out_dir}: exists and is not an export directory; refusing to overwrite it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.chmod(0o755)  # mkdtemp makes it private; an export directory is meant to be shared
    if out_dir.exists():  # a previous export: swap, then delete it
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
        os.replace(out_dir, old / "export")
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


def check_weights(float_info: flatbuffer.TFLiteInfo, int8_info: flatbuffer.TFLiteInfo, unique_parameters: int) -> dict:
    """Weights stored once in both files (raises DuplicateWeightsError); constant bytes against parameters."""
    flatbuffer.check_stored_once(float_info)
    flatbuffer.check_stored_once(int8_info)
    limit = MAX_FLOAT_BYTES_PER_PARAMETER * unique_parameters
    if float_info.constant_bytes > limit:
        raise flatbuffer.DuplicateWeightsError(
            f"{float_info.path}: {float_info.constant_bytes} constant bytes for {unique_parameters} unique parameters "
            f"(over {MAX_FLOAT_BYTES_PER_PARAMETER:g} bytes each): shared weights were copied per depth"
        )
    return {
        "unique_parameters": unique_parameters,
        "float32_constant_bytes": float_info.constant_bytes,
        "int8_constant_bytes": int8_info.constant_bytes,
        "int8_bytes_per_parameter": round(int8_info.constant_bytes / unique_parameters, 3),
        "duplicated_constants": 0,
    }


def model_report(
    config: Config,
    parameters: dict,
    weights: dict,
    files: list[Path],
    infos: tuple[flatbuffer.TFLiteInfo, flatbuffer.TFLiteInfo],
    arena: tuple[int, float],
) -> dict:
    """What every export records of the model it wrote: sharing plan, parameters, bytes, measured arena and margin.

    `parameters` is asr.model.report.parameter_report's; `infos` the float32 and int8 files'."""
    m = config.model
    return {
        "sharing": {
            "scheme": m.sharing,
            "depth": m.depth,
            "unique_blocks": m.unique_blocks,
            "plan": parameters.get("plan"),
            "per_depth_norm": m.per_depth_norm,
            "lora_rank": m.lora_rank,
        },
        "unique_parameters": int(parameters["unique_parameters"]),
        "effective_parameters": parameters.get("effective_parameters"),
        "weights": weights,
        "files": {p.name: p.stat().st_size for p in files},
        "tflite": {"float32": infos[0].summary(), "int8": infos[1].summary()},
        "arena_measured_bytes": arena[0],
        "arena_margin": arena[1],
    }


def export_model(
    model: torch.nn.Module,
    config: Config,
    labels: list[str],
    out_dir: Path,
    calibration: np.ndarray,
    test: tuple[np.ndarray, np.ndarray],
    *,
    mcu: bool = False,
    source: dict | None = None,
    report: dict | None = None,
    route: str | None = None,
) -> Manifest:
    """Export a keyword model; returns the manifest. `test` is (windows, labels) of the held-out split.

    `report` is the model's parameter report (asr.model.report.parameter_report) when it has one. `route` None
    takes the default route, falling back to `unrolled` (with the reason in the manifest's "route_note") for a
    model the loop route cannot take; an explicit `loop` such a model raises LoopExportError naming the setting.
    """
    spec = config.features
    shape = (1, spec.num_frames(spec.clip_samples), spec.n_mels)
    if len(calibration) == 0:
        raise InputError(f"{out_dir}: the calibration set is empty: int8 scales need real training windows")
    model.eval()
    with torch.no_grad():
        try:
            outputs = model(torch.zeros(shape)).shape
        except RuntimeError as e:
            raise InputError(f"model does not accept the config's feature window {list(shape)}: {e}") from None
    if tuple(outputs) != (1, len(labels)):
        raise InputError(f"model outputs {list(outputs)} but there are {len(labels)} labels {labels}")
    report = report or {"unique_parameters": sum(p.numel() for p in model.parameters())}
    route, route_note = choose_route(route, model, config)
    steps = None
    if getattr(model, "context", 0):  # causal: exported as its streaming step
        spec_ = stream_spec(model)
        warmup = stream.transient_steps(model)
        steps = StreamSteps(spec_["frames_in"], spec_["frames_per_step"], spec_["head_frames"], warmup)
    started = time.perf_counter()
    with staging(out_dir) as stage, tempfile.TemporaryDirectory(prefix="asr-export-") as work:
        made = CONVERTERS[route](model, config, shape, calibration, stage, Path(work))
        onnx_path, float_path, int8_path = made.onnx_path, made.float_path, made.int8_path
        float_info, int8_info = flatbuffer.inspect_tflite(float_path), flatbuffer.inspect_tflite(int8_path)
        weights = check_weights(float_info, int8_info, int(report["unique_parameters"]))
        micro.check_supported(int8_info, onnx_path)
        measured = micro.measure_arena(int8_path)
        margin = config.export.arena_margin
        arena = int(math.ceil(measured * (1 + margin) / micro.ARENA_ALIGN) * micro.ARENA_ALIGN)

        input_details, output_details = io_details(int8_path)
        io = {"input": tensor_info(input_details), "output": tensor_info(output_details)}
        test_x, test_y = test
        windows = (test_x if len(test_x) else calibration)[: config.export.parity_samples]
        if steps is None:
            reference = parity.torch_scores(model, windows)
            float_parity = parity.float_parity(reference, float_path, windows, onnx_path)
            int8_parity, latency = parity.int8_parity(int8_path, windows, reference, io, arena, made.parity_criterion)
            accuracy = (
                parity.accuracy(parity.torch_scores(model, test_x), float_path, int8_path, test_x, test_y, io)
                if len(test_x)
                else None
            )
        else:  # the parity windows played one after another as one stream
            float_parity, int8_parity, latency = stream.stream_parity(
                model, float_path, int8_path, windows.reshape(-1, spec.n_mels), steps, arena
            )
            accuracy = (
                stream.stream_accuracy(model, float_path, int8_path, test_x, test_y, steps, spec)
                if len(test_x)
                else None
            )
        files = [p for p in (onnx_path, float_path, int8_path) if p is not None]
        report = {
            "route": route,
            "route_details": made.details,
            **model_report(config, report, weights, files, (float_info, int8_info), (measured, margin)),
            "parity": {"float32": float_parity, "int8": int8_parity},
            "accuracy": accuracy,
            "latency_ms": latency,
            "conversion_seconds": round(made.seconds, 2),
            "calibration_windows": len(calibration),
            "source": source or {"checkpoint": None, "config": config.name},
            "versions": tool_versions(),
        }
        if route_note:
            report["route_note"] = route_note
        models = {"int8": int8_path.name, "float32": float_path.name} | ({"onnx": onnx_path.name} if onnx_path else {})
        wake_word = config.data.wake_word if config.data.wake_word in labels else None
        manifest = Manifest(
            labels, spec, models, io["input"], io["output"], arena, wake_word=wake_word, stream=steps, report=report
        )
        if mcu:
            if steps is None:
                inputs = quantize(windows, io["input"].scale, io["input"].zero_point)
            else:  # a stream of a few windows, features as they come
                inputs = windows[:8].reshape(-1, spec.n_mels)
            model_bytes, report["mcu_model"] = micro_model(int8_path, inputs, arena, steps)
            report["mcu"] = write_bundle(stage / MCU_DIR, model_bytes, manifest, int8_info)
        report["export_seconds"] = round(time.perf_counter() - started, 2)
        manifest.write(stage)
    return manifest


def export_checkpoint(
    checkpoint: Path,
    out_dir: Path,
    *,
    mcu: bool = False,
    calibration: int | None = None,
    data_root: Path | None = None,
    route: str | None = None,
) -> Manifest:
    """Export a keyword checkpoint, calibrating on its corpus's training split and scoring on its test split.

    `route`: as for `export_model`. CTC checkpoints export with asr.export.ctc.
    """
    from asr.export.windows import corpus_windows
    from asr.model.checkpoint import load_checkpoint
    from asr.model.report import parameter_report

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise MissingError(f"{checkpoint}: checkpoint not found")
    loaded = load_checkpoint(checkpoint)
    config = loaded.config
    if config.task != "kws":
        raise InputError(f"{checkpoint}: task {config.task!r}: a CTC model exports with asr.export.ctc")
    try:
        choose_route(route, loaded.model, config)  # refuse before reading the corpus; export_model decides again
    except LoopExportError as e:
        raise LoopExportError(f"{checkpoint}: {e}") from None
    root = Path(data_root or config.data.root)
    count = calibration if calibration is not None else config.export.calibration_samples
    if count <= 0:
        raise InputError(f"--calibration {count}: the calibration set would be empty")
    calib_x, _, corpus_labels = corpus_windows(config, root, "train", count)
    if list(corpus_labels) != list(loaded.labels):
        raise InputError(
            f"{checkpoint}: labels {loaded.labels} do not match the corpus at {root} ({corpus_labels}); "
            "pass the corpus the model was trained on with --data"
        )
    if len(calib_x) == 0:
        raise InputError(f"{root}: the training split has no clips to calibrate with")
    test = corpus_windows(config, root, "testing")[:2]
    source = {"checkpoint": str(checkpoint), "config": config.name, "data": str(root)}
    try:
        return export_model(
            loaded.model,
            config,
            loaded.labels,
            out_dir,
            calib_x,
            test,
            mcu=mcu,
            source=source,
            report=parameter_report(loaded.model),
            route=route,
        )
    except LoopExportError as e:
        raise LoopExportError(f"{checkpoint}: {e}") from None
