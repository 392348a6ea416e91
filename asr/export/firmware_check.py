"""Run a built firmware (`asr firmware`) on test clips and hold it to the Python TFLite Micro interpreter.

Clips go in as 16 kHz int16 PCM, as from a microphone; the firmware computes features with the bundle's C front
end and dumps each clip's int8 model input, so two comparisons are made: the same model on the firmware's own
input (the interpreter port: labels must agree on every clip) and the whole chain against the numpy front end
(what a user sees). Also: flash and RAM of an image, and its instructions per window under QEMU's -icount.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.export.firmware import TARGETS, FirmwareError, qemu_command
from asr.export.parity import INT8_LSB_TOLERANCE
from asr.features import log_mel
from asr.labels import keywords
from asr.runtime.bundle import Manifest
from asr.runtime.interpreter import quantize

# Sections the board's linker script reserves whole; the stack is measured instead, the heap only serves the
# semihosting file I/O of the test harness.
RESERVED_SECTIONS = {".heap", ".stack"}


def to_pcm16(waves: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(waves) * 32768.0), -32768, 32767).astype(np.int16)


def split_clips(corpus: Path, labels: list[str], count: int) -> tuple[np.ndarray, np.ndarray]:
    """(int16 PCM [n, 16000], label index [n]) of `count` clips spread evenly over the corpus's testing split."""
    from asr.data.speech_commands import SpeechCommands

    data = SpeechCommands(corpus, "testing", keywords(labels))
    if data.labels != labels:
        raise InputError(f"{corpus}: its labels {data.labels} differ from the export's {labels}")
    picks = np.unique(np.linspace(0, len(data) - 1, min(count, len(data))).round().astype(int))
    items = [data[int(i)] for i in picks]  # the loader fits each clip to the window
    waves = np.stack([w for w, _ in items])
    return to_pcm16(waves), np.array([y for _, y in items])


@dataclass
class FirmwareRun:
    outputs: np.ndarray  # [n, classes]: int8 outputs (a streaming step model: its head's int8 sums)
    inputs: np.ndarray  # int8 [n, frames, mels], the firmware's own features
    log: str
    profile: dict = field(default_factory=dict)


def run_firmware(target: str, exe: Path, pcm: np.ndarray, frames: int, mels: int, timeout: float = 3600) -> FirmwareRun:
    """Run `exe` on clips `pcm` [n, samples] (host directly, Cortex-M under QEMU with -icount)."""
    with tempfile.TemporaryDirectory(prefix="kws-fw-") as tmp:
        clips, dump = Path(tmp) / "clips.pcm", Path(tmp) / "inputs.i8"
        clips.write_bytes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
        args = [str(clips), str(dump)]
        cmd = qemu_command(target, exe, args) if TARGETS[target].embedded else [str(exe), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise FirmwareError(f"{exe} exited with {proc.returncode}:\n{log[-3000:]}")
        inputs = np.fromfile(dump, dtype=np.int8).reshape(-1, frames, mels)
    outputs = np.array([[int(q) for q in line.split()[3:]] for line in log.splitlines() if line.startswith("result ")])
    if len(outputs) != len(pcm) or len(inputs) != len(pcm):
        raise FirmwareError(f"{exe}: {len(outputs)} results for {len(pcm)} clips:\n{log[-3000:]}")
    return FirmwareRun(outputs.astype(np.int32), inputs, log, parse_profile(log))


def parse_profile(log: str) -> dict:
    """Instructions per clip (front end, model) and peak stack from the `profile` lines of an emulated run."""
    cal = re.search(r"profile calibration instructions=(\d+) ticks=(\d+)", log)
    if not cal:
        return {}
    per_tick = int(cal.group(1)) / int(cal.group(2))
    windows = np.array(
        [[int(x) for x in m] for m in re.findall(r"frontend_ticks=(\d+) model_ticks=(\d+) detector_ticks=(\d+)", log)]
    )
    stack = re.search(r"profile stack_below_main=(\d+)", log)
    ops = {
        name: int(ticks) * per_tick / len(windows) for name, ticks in re.findall(r"profile op (\S+) ticks=(\d+)", log)
    }
    return {
        "op_instructions": dict(sorted(ops.items(), key=lambda kv: -kv[1])),  # per window, each op's own
        "instructions_per_tick": per_tick,
        "frontend_instructions": float(np.median(windows[:, 0]) * per_tick),
        "model_instructions": float(np.median(windows[:, 1]) * per_tick),
        "detector_instructions": float(np.median(windows[:, 2]) * per_tick),
        "stack_bytes": int(stack.group(1)) + 256 if stack else None,  # + the unpainted gap under main's frame
    }


def python_micro(export_dir: Path, inputs: np.ndarray) -> np.ndarray:
    """What the firmware prints for int8 clip features `inputs`, from the Python TFLite Micro interpreter: the int8
    outputs, or a streaming step model's head sums (asr.runtime.host_interpreters.clip_head_sums)."""
    from asr.runtime.host_interpreters import clip_head_sums, run_micro

    manifest = Manifest.read(export_dir)
    path = export_dir / manifest.models["int8"]
    if manifest.stream is not None:
        return clip_head_sums(path, manifest.arena_bytes, inputs, manifest.stream, manifest.features)
    outputs, _ = run_micro(path, inputs, manifest.arena_bytes)
    return np.asarray(outputs).reshape(len(inputs), -1).astype(np.int32)


def reference_inputs(export_dir: Path, pcm: np.ndarray) -> np.ndarray:
    """The numpy front end's int8 model inputs for `pcm`."""
    manifest = Manifest.read(export_dir)
    features = np.stack([log_mel(p.astype(np.float32) / 32768.0, manifest.features) for p in pcm])
    return quantize(features, manifest.input.scale, manifest.input.zero_point)


def agreement(export_dir: Path, run: FirmwareRun, pcm: np.ndarray) -> dict:
    """The firmware against Python TFLite Micro: on the firmware's own inputs, and end to end from the audio."""
    same = python_micro(export_dir, run.inputs)
    ref_inputs = reference_inputs(export_dir, pcm)
    end_to_end = python_micro(export_dir, ref_inputs)
    lsb = lambda a, b: int(np.abs(a.astype(int) - b.astype(int)).max())  # noqa: E731
    return {
        "clips": len(pcm),
        "labels_same_input": float((same.argmax(1) == run.outputs.argmax(1)).mean()),
        "max_lsb_same_input": lsb(same, run.outputs),
        "labels_end_to_end": float((end_to_end.argmax(1) == run.outputs.argmax(1)).mean()),
        "max_lsb_end_to_end": lsb(end_to_end, run.outputs),
        "lsb_tolerance": INT8_LSB_TOLERANCE,
        "frontend_inputs_differing": float((ref_inputs != run.inputs).mean()),
        "frontend_max_lsb": lsb(ref_inputs, run.inputs),
    }


FLASH_PARTS = ("tflm", "cmsis_nn", "bundle")
# An input section of the linker map: its name (on the line itself or the one before), address, size, origin.
MAP_SECTION = re.compile(r"^ (\S+)?\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+\.(?:o|a\(.+\)))$")


def flash_parts(map_path: Path) -> dict[str, int]:
    """Flash bytes of TFLite Micro with its kernels ("tflm"), CMSIS-NN and the bundle's own code and tables
    (main, front end, detector; "bundle", the model array left out), from the image's linker map."""
    text = map_path.read_text()
    parts = dict.fromkeys(FLASH_PARTS, 0)
    output = ""
    for line in text[text.find("Linker script and memory map") :].splitlines():
        if line.startswith("."):
            output = line.split()[0]
        m = MAP_SECTION.match(line)
        if not m or output in (".bss", ".heap", ".stack") or not output or output.startswith((".debug", ".comment")):
            continue
        size, origin = int(m.group(2), 16), m.group(3)
        archive = Path(origin.split("(")[0]).name
        if archive.startswith(("tflm-", "cmsis_nn-")):
            parts["tflm" if archive.startswith("tflm-") else "cmsis_nn"] += size
        elif "/obj/" in origin and "model_data" not in origin:
            parts["bundle"] += size
    return parts


def image_sizes(target: str, elf: Path, stack_bytes: int | None) -> dict:
    """Flash (read-only sections + the load image of .data) and RAM (writable sections + the measured stack)."""
    tool = TARGETS[target].prefix + "readelf"
    text = subprocess.run([tool, "-S", "-W", str(elf)], capture_output=True, text=True, check=True).stdout
    flash = ram = 0
    # readelf rows: [Nr] Name Type Address Off Size ES Flg ...
    for m in re.finditer(r"\]\s+(\S+)\s+(PROGBITS|NOBITS|ARM_EXIDX|\w+_ARRAY)\s+\S+\s+\S+\s+(\S+)\s+\S+\s+(\S*)", text):
        name, kind, size, flags = m.group(1), m.group(2), int(m.group(3), 16), m.group(4)
        if "A" not in flags or name in RESERVED_SECTIONS:
            continue
        if "W" in flags:
            ram += size
            flash += size if kind != "NOBITS" else 0
        else:
            flash += size
    nm = subprocess.run([TARGETS[target].prefix + "nm", "-S", str(elf)], capture_output=True, text=True).stdout
    symbols = {line.split()[-1]: int(line.split()[1], 16) for line in nm.splitlines() if len(line.split()) == 4}
    model = next(size for name, size in symbols.items() if name == "g_model_data")
    arena = next(size for name, size in symbols.items() if "tensor_arena" in name)
    sizes = {"flash": flash, "model": model, "ram": ram + (stack_bytes or 0), "arena": arena, "stack": stack_bytes}
    parts = flash_parts(elf.with_suffix(".map"))
    # The rest: the C library (printf and the semihosting file I/O of this test harness), start-up, libgcc.
    return (
        sizes
        | {f"flash_{name}": size for name, size in parts.items()}
        | {"flash_libc": flash - model - sum(parts.values())}
    )
