"""The microcontroller bundle (OUTDIR/mcu/): the int8 model as a C array, its settings, an op resolver of the ops
it uses, the C front end with tables generated from FeatureSpec, and the detector's decision step in C (template
sources: the package data asr/export/mcu_templates/)."""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.export.flatbuffer import TFLiteInfo, compact_for_micro, resource_variables
from asr.export.micro import MicroError, resolver_method
from asr.features import FeatureSpec, mel_filterbank, window
from asr.runtime.bundle import Manifest, StreamSteps
from asr.runtime.detector_config import HEADER, c_float
from asr.runtime.host_interpreters import run_micro

TEMPLATES = resources.files("asr.export") / "mcu_templates"
TEMPLATE_FILES = (
    "frontend.c",
    "frontend.h",
    "host_features.c",
    "detector.c",
    "detector.h",
    "host_detector.c",
    "logistic_lut.h",
    "loop_kernels.h",
    "row_kernels.h",
    "main.cc",
    "model_check.cc",
    "model_check.h",
    "README.md",
    "CMakeLists.txt",
    "idf_component.yml",
)


def c_array(values, per_line: int = 8) -> str:
    items = list(values)
    return ",\n".join("  " + ", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line))


def sparse_filterbank(spec: FeatureSpec) -> tuple[list[int], list[int], list[int], np.ndarray]:
    """(start bin, count, offset, weights) of each triangular filter: the non-zero run of each column."""
    fb = mel_filterbank(spec)
    starts, counts, offsets, weights = [], [], [], []
    for m in range(spec.n_mels):
        nonzero = np.flatnonzero(fb[:, m])
        start, stop = (int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else (0, 0)
        starts.append(start)
        counts.append(stop - start)
        offsets.append(sum(len(w) for w in weights))
        weights.append(fb[start:stop, m])
    return starts, counts, offsets, np.concatenate(weights)


def frontend_sources(spec: FeatureSpec, source: str) -> dict[str, str]:
    """frontend_config.h and frontend_tables.c for `spec`."""
    if spec.n_fft & (spec.n_fft - 1):
        raise InputError(f"features.n_fft = {spec.n_fft}: the C front end's FFT needs a power of two")
    starts, counts, offsets, weights = sparse_filterbank(spec)
    half = np.arange(spec.n_fft // 2) * 2.0 * np.pi / spec.n_fft
    frames = spec.num_frames(spec.clip_samples)
    config = HEADER.format(source=source) + "\n".join(
        [
            "#ifndef ASR_FRONTEND_CONFIG_H_",
            "#define ASR_FRONTEND_CONFIG_H_",
            "",
            f"#define FRONTEND_SAMPLE_RATE {spec.sample_rate}",
            f"#define FRONTEND_N_FFT {spec.n_fft}",
            f"#define FRONTEND_HOP {spec.hop_length}",
            f"#define FRONTEND_N_MELS {spec.n_mels}",
            f"#define FRONTEND_WINDOW_SAMPLES {spec.clip_samples}",
            f"#define FRONTEND_NUM_FRAMES {frames}",
            f"#define FRONTEND_LOG_OFFSET {c_float(spec.log_offset)}",
            f"#define FRONTEND_MEAN {c_float(spec.mean)}",
            f"#define FRONTEND_STD {c_float(spec.std)}",
            f"#define FRONTEND_MEL_WEIGHTS {len(weights)}",
            "",
            "#ifdef __cplusplus",
            'extern "C" {',
            "#endif",
            "extern const float kFrontendWindow[FRONTEND_N_FFT];  // periodic Hann",
            "extern const float kFrontendTwiddleCos[FRONTEND_N_FFT / 2];",
            "extern const float kFrontendTwiddleSin[FRONTEND_N_FFT / 2];",
            "extern const short kFrontendMelStart[FRONTEND_N_MELS];  // first FFT bin of each mel filter",
            "extern const short kFrontendMelCount[FRONTEND_N_MELS];  // its number of bins",
            "extern const short kFrontendMelOffset[FRONTEND_N_MELS];  // where its weights start",
            "extern const float kFrontendMelWeights[FRONTEND_MEL_WEIGHTS];",
            "#ifdef __cplusplus",
            "}",
            "#endif",
            "",
            "#endif  // ASR_FRONTEND_CONFIG_H_",
            "",
        ]
    )
    tables = HEADER.format(source=source) + "\n".join(
        [
            '#include "frontend_config.h"',
            "",
            f"const float kFrontendWindow[FRONTEND_N_FFT] = {{\n{c_array(map(c_float, window(spec)))}\n}};",
            f"const float kFrontendTwiddleCos[FRONTEND_N_FFT / 2] = {{\n{c_array(map(c_float, np.cos(half)))}\n}};",
            f"const float kFrontendTwiddleSin[FRONTEND_N_FFT / 2] = {{\n{c_array(map(c_float, np.sin(half)))}\n}};",
            f"const short kFrontendMelStart[FRONTEND_N_MELS] = {{\n{c_array(map(str, starts), 16)}\n}};",
            f"const short kFrontendMelCount[FRONTEND_N_MELS] = {{\n{c_array(map(str, counts), 16)}\n}};",
            f"const short kFrontendMelOffset[FRONTEND_N_MELS] = {{\n{c_array(map(str, offsets), 16)}\n}};",
            f"const float kFrontendMelWeights[FRONTEND_MEL_WEIGHTS] = {{\n{c_array(map(c_float, weights))}\n}};",
            "",
        ]
    )
    return {"frontend_config.h": config, "frontend_tables.c": tables}


# TFLite Micro's int8-only registrations and the kernel header that declares each. With CMSIS-NN they leave out
# the kernels' float, int16 and int4 paths (40 KB of an M4F image, BENCHMARKS.md section 7); the reference
# kernels name the generic registration.
INT8_KERNELS = {
    "ADD": "add.h",
    "AVERAGE_POOL_2D": "pooling.h",
    "BATCH_MATMUL": "batch_matmul.h",
    "CONV_2D": "conv.h",
    "DEPTHWISE_CONV_2D": "depthwise_conv.h",
    "FULLY_CONNECTED": "fully_connected.h",
    "MAX_POOL_2D": "pooling.h",
    "MAXIMUM": "maximum_minimum.h",
    "MINIMUM": "maximum_minimum.h",
    "MUL": "mul.h",
    "PAD": "pad.h",
    "SOFTMAX": "softmax.h",
    "SVDF": "svdf.h",
    "TRANSPOSE": "transpose.h",
    "TRANSPOSE_CONV": "transpose_conv.h",
}


# The bundle's own kernels, the same outputs in far fewer instructions: LOGISTIC as a table (logistic_lut.h); in
# row_kernels.h, the LayerNorm's MEAN without TFLM's generic reduce loop, and wrappers around an op's own kernel:
# ADD, SUB and MUL without the generic broadcast loop (SUB of a per-row scalar rescaling it once per row), SOFTMAX
# with a table of exp(), FULLY_CONNECTED over all rows at once.
OWN_KERNELS = {"LOGISTIC": "kws::RegisterLogisticLut()", "MEAN": "kws::RegisterMeanLastAxis()"}
WRAPPERS = {
    "ADD": "kws::RegisterRowBroadcast",
    "SUB": "kws::RegisterSubRows",
    "MUL": "kws::RegisterRowBroadcast",
    "SOFTMAX": "kws::RegisterSoftmaxTable",
    "FULLY_CONNECTED": "kws::RegisterFullyConnectedRows",
}


# The WHILE loop's int32 counter (loop_kernels.h): LESS computed in place, ADD in place beside its int8 kernel;
# each with the kinds of use (OpInfo.kind) it computes, and the TFLM header of the kernel it wraps.
COUNTER_KERNELS = {
    "LESS": ("kws::RegisterLessInt32", {"int32"}, None),
    "ADD": ("kws::RegisterAddInt32Or<tflite::Register_ADD_INT8>", {"int8", "int32"}, INT8_KERNELS["ADD"]),
}


def registration(op: str, kinds: set[str]) -> tuple[str, str | None]:
    """(the argument of op_resolver.h's `resolver.AddX(...)` for `op` used on `kinds` of data, "" for TFLM's default
    kernel; the header under tensorflow/lite/micro/kernels/ that declares the kernel, None for none)."""
    if op in OWN_KERNELS:
        return OWN_KERNELS[op], None
    if op == "SUB" and kinds == {"int8 row scalar"}:  # every SUB is x - mean: no TFLM SUB kernel at all
        return "kws::RegisterSubRows<kws::SubPrepareOnly>()", None
    counter, computes, counter_header = COUNTER_KERNELS.get(op, ("", set(), None))
    if "int32" in kinds and kinds <= computes:
        kernel, header = counter, counter_header
    elif kinds == {"int8"} and op in INT8_KERNELS:
        kernel, header = f"tflite::Register_{op}_INT8", INT8_KERNELS[op]
    elif op in WRAPPERS:
        kernel, header = f"tflite::Register_{op}", None
    else:
        return "", None
    return (f"{WRAPPERS[op]}<{kernel}>()" if op in WRAPPERS else f"{kernel}()"), header


def resolver_source(use_kinds: dict[str, set[str]], head: str) -> str:
    """op_resolver.h: exactly the ops of `use_kinds` (op -> the kinds of its uses, TFLiteInfo.use_kinds), each with
    the smallest kernel that computes all its uses."""
    ops = sorted(use_kinds)
    registrations = {op: registration(op, use_kinds[op]) for op in ops}
    headers = sorted({header for _, header in registrations.values() if header})
    includes = "".join(f'#include "tensorflow/lite/micro/kernels/{h}"\n' for h in headers)
    adds = "\n".join(f"  TF_LITE_ENSURE_STATUS(resolver.{resolver_method(op)}({registrations[op][0]}));" for op in ops)
    return head + (
        "#pragma once\n\n"
        f'#include "logistic_lut.h"\n#include "loop_kernels.h"\n#include "row_kernels.h"\n{includes}'
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        f"// Exactly the {len(ops)} op types the int8 model uses, each with the smallest kernel that computes all its\n"
        "// uses: the int8 kernel where all are int8, the loop counter's in place (loop_kernels.h).\n"
        f"using ModelOpResolver = tflite::MicroMutableOpResolver<{len(ops)}>;\n\n"
        f"inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {{\n{adds}\n  return kTfLiteOk;\n}}\n"
    )


def stream_settings(manifest: Manifest, variables: int) -> list[str]:
    """model_settings.h's lines for the streaming step of a causal model (main.cc's kStreaming; `variables`: the
    resource variables it keeps its caches in), or a window model's (one step: the whole window)."""
    steps = manifest.stream
    if steps is None:
        return [
            "// A window model: the model runs on the whole window (no streaming step, no caches).",
            "constexpr bool kStreaming = false;",
            "constexpr int kStepFrames = kNumFrames;",
            "constexpr int kFramesPerStep = 1;",
            "constexpr int kHeadFrames = 1;",
            "constexpr int kResourceVariables = 0;",
            "constexpr int kWarmupSteps = 0;",
        ]
    return [
        "// A causal model's streaming step: kStepFrames feature frames in every kFramesPerStep frames, one encoder",
        "// frame out; the model keeps its caches (keys, values, convolution inputs of every depth) in resource",
        "// variables, which the interpreter allocates in the arena.",
        "constexpr bool kStreaming = true;",
        f"constexpr int kStepFrames = {steps.frames_in};",
        f"constexpr int kFramesPerStep = {steps.frames_per_step};",
        f"constexpr int kHeadFrames = {steps.head_frames};  // the keyword head: the mean of the last steps' logits",
        f"constexpr int kResourceVariables = {variables};",
        f"constexpr int kWarmupSteps = {steps.warmup_steps};  // steps of silence a stream starts from: the transient",
    ]


def model_sources(
    model_bytes: bytes, manifest: Manifest, use_kinds: dict[str, set[str]], source: str
) -> dict[str, str]:
    """model_data.h/.cc, model_settings.h and op_resolver.h for the int8 model described by `manifest`."""
    spec = manifest.features
    inp, out, labels = manifest.input, manifest.output, manifest.labels
    head = HEADER.format(source=source)
    data_h = head + (
        "#pragma once\n\nextern const unsigned char g_model_data[];\nextern const unsigned int g_model_data_len;\n"
    )
    hex_bytes = c_array((f"0x{b:02x}" for b in model_bytes), 16)
    data_cc = head + (
        '#include "model_data.h"\n\n'
        "// 16-byte aligned: TFLite Micro reads tensors in place from flash.\n"
        f"alignas(16) const unsigned char g_model_data[] = {{\n{hex_bytes}\n}};\n"
        f"const unsigned int g_model_data_len = {len(model_bytes)};\n"
    )
    label_list = ", ".join(f'"{label}"' for label in labels)
    settings = head + "\n".join(
        [
            "#pragma once",
            "",
            f"// Features ({spec.sample_rate} Hz, n_fft {spec.n_fft}, hop {spec.hop_length}, {spec.n_mels} HTK mels "
            f"{spec.f_min:g}-{spec.f_max:g} Hz, log(mel + {spec.log_offset:g}), (x - {spec.mean:g}) / {spec.std:g}):",
            "// see frontend_config.h, generated from the same FeatureSpec.",
            f"constexpr int kSampleRate = {spec.sample_rate};",
            f"constexpr int kWindowSamples = {spec.clip_samples};",
            f"constexpr int kNumFrames = {spec.window_frames};  // the feature ring: one window",
            f"constexpr int kNumMels = {inp.shape[2]};",
            f"constexpr float kInputScale = {c_float(inp.scale)};",
            f"constexpr int kInputZeroPoint = {inp.zero_point};",
            f"constexpr float kOutputScale = {c_float(out.scale)};",
            f"constexpr int kOutputZeroPoint = {out.zero_point};",
            f"constexpr bool kOutputIsProbabilities = {str(manifest.output_kind == 'probabilities').lower()};",
            f"constexpr int kNumLabels = {len(labels)};",
            f"constexpr const char* kLabels[kNumLabels] = {{{label_list}}};",
            f"// Measured: the smallest arena TFLite Micro ran this model with was "
            f"{manifest.report['arena_measured_bytes']} bytes; plus a {manifest.report['arena_margin']:.0%} margin.",
            f"constexpr int kTensorArenaSize = {manifest.arena_bytes};",
            *stream_settings(manifest, len(resource_variables(model_bytes))),
            "",
        ]
    )
    resolver = resolver_source(use_kinds, head)
    return {"model_data.h": data_h, "model_data.cc": data_cc, "model_settings.h": settings, "op_resolver.h": resolver}


def micro_model(
    int8_path: Path, inputs: np.ndarray, arena_bytes: int, steps: StreamSteps | None = None
) -> tuple[bytes, dict]:
    """(the bundle's model: `int8_path` compacted for TFLite Micro, what that saved).

    MicroError unless TFLite Micro gives every one of `inputs` (int8 model inputs) the same outputs from both; a
    streaming step model (`steps`) instead plays `inputs` (float features [N, F]) as one stream through both.
    """
    from asr.runtime.host_interpreters import micro_step
    from asr.runtime.interpreter import play

    def outputs(path: Path) -> np.ndarray:
        if steps is None:
            return run_micro(path, inputs, arena_bytes)[0]
        return play(micro_step(path, arena_bytes)[0], inputs, steps)[0]

    tflite = int8_path.read_bytes()
    compact, dropped = compact_for_micro(tflite)
    with tempfile.TemporaryDirectory(prefix="asr-mcu-") as tmp:
        path = Path(tmp) / "model_micro.tflite"
        path.write_bytes(compact)
        same = np.array_equal(outputs(int8_path), outputs(path))
    if not same:
        raise MicroError(f"{int8_path}: the model compacted for TFLite Micro computes other outputs; not bundled")
    return compact, {"bytes": len(compact), "saved_bytes": len(tflite) - len(compact), "zero_points_dropped": dropped}


def write_bundle(out_dir: Path, model_bytes: bytes, manifest: Manifest, info: TFLiteInfo) -> list[str]:
    """Write the bundle of `model_bytes` (micro_model's; `info` inspects its .tflite) into `out_dir` (created);
    returns the file names written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = model_sources(model_bytes, manifest, info.use_kinds, manifest.source)
    files.update(frontend_sources(manifest.features, manifest.source))
    files["detector_config.h"] = manifest.detector_config_h()
    for name, text in files.items():
        (out_dir / name).write_text(text)
    for name in TEMPLATE_FILES:
        (out_dir / name).write_bytes((TEMPLATES / name).read_bytes())
    return sorted([*files, *TEMPLATE_FILES])
