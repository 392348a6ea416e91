"""Firmware benchmark: the exported bundle built with TFLite Micro for the host, a Cortex-M4F (reference and
CMSIS-NN kernels) and a Cortex-M55, run on test clips (Cortex-M under qemu-system-arm with -icount), held to the
Python TFLite Micro interpreter, and measured: flash, RAM, instructions per window, real-time verdict.

    python -m bench.firmware artifacts/kws-tiny --data data/generated/commands --clips 200

Results go to OUT (default bench/firmware.json), one target at a time, so a killed run resumes where it stopped.
The real-time verdict assumes one instruction per cycle (a lower bound on a Cortex-M4's cycles: loads and
branches take 2); scale by a board's measured CPI.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from asr.export import firmware, flatbuffer
from asr.export.firmware_check import agreement, image_sizes, parse_profile, run_firmware, split_clips
from asr.export.mcu import write_bundle
from asr.runtime.bundle import Manifest

CLOCKS_MHZ = (64, 160, 240)
FRAME_S = 0.01  # the front end's hop; a window hop is a whole number of frames
WINDOW_S = 1.0  # the model's window: a longer hop would skip audio


def shortest_hop(model: float, frontend_per_frame: float, mhz: float) -> float | None:
    """The shortest window hop (s, whole frames) at which front end + model fit `mhz` million instructions/s."""
    spare = mhz * 1e6 - frontend_per_frame / FRAME_S
    if spare <= 0:
        return None
    return math.ceil(model / spare / FRAME_S - 1e-9) * FRAME_S


def stream_profile(target: str, exe: Path, pcm: np.ndarray) -> dict:
    """Instructions per 0.1 s hop of the streaming app (--stream: new frames only, model, decision step)."""
    path = exe.parent / "stream.pcm"
    path.write_bytes(pcm.reshape(-1).astype("<i2").tobytes())
    cmd = firmware.qemu_command(target, exe, ["--stream", str(path)])
    log = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=True).stdout
    profile = parse_profile(log)
    return {
        "hop_instructions": profile["frontend_instructions"]
        + profile["model_instructions"]
        + profile["detector_instructions"],
        "hop_frontend_instructions": profile["frontend_instructions"],
        "detector_instructions": profile["detector_instructions"],
        "detections": sum(line.startswith("detection ") for line in log.splitlines()),
    }


def fresh_bundle(export_dir: Path, work: Path) -> Path:
    """A copy of the export (manifest, int8 model) with its MCU bundle written by this checkout's templates, so an
    export made by an older version is measured with the current firmware sources."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("manifest.json", "model_int8.tflite"):
        shutil.copyfile(export_dir / name, work / name)
    manifest = Manifest.read(work)
    # Compacted without micro_model's check: the firmware's agreement with Python TFLM on the .tflite is the check.
    model_bytes = flatbuffer.compact_for_micro((work / "model_int8.tflite").read_bytes())[0]
    write_bundle(work / "mcu", model_bytes, manifest, flatbuffer.inspect_tflite(work / "model_int8.tflite"))
    return work


def bench_target(export_dir: Path, target: str, pcm: np.ndarray, frames: int, mels: int, op_clips: int) -> dict:
    """The release image's agreement, sizes and instructions; each op's instructions from the debug image (TFLite
    Micro's release build has no per-op profile) on the first `op_clips` clips."""
    t0 = time.time()
    exe = firmware.build(export_dir, target)
    built = time.time() - t0
    t0 = time.time()
    run = run_firmware(target, exe, pcm, frames, mels)
    ran = time.time() - t0
    row = {"target": target, "build_s": round(built, 1), "run_s": round(ran, 1), **agreement(export_dir, run, pcm)}
    if firmware.TARGETS[target].embedded:
        row |= run.profile | image_sizes(target, exe, run.profile["stack_bytes"])
        row |= stream_profile(target, exe, pcm[: min(len(pcm), 8)])
        if op_clips:
            debug = run_firmware(target, firmware.build(export_dir, target, debug=True), pcm[:op_clips], frames, mels)
            row["op_instructions"] = debug.profile["op_instructions"]
    return row


def verdict(row: dict, mhz: int) -> str:
    per_frame = row["frontend_instructions"] / row["frames"]
    if row.get("stream"):  # a streaming step model: its work per second is fixed, whatever the decision hop
        st = row["stream"]
        steps = (row["frames"] - st["frames_in"]) // st["frames_per_step"] + 1  # in one clip's model instructions
        per_s = per_frame / FRAME_S + row["model_instructions"] / steps * (1 / FRAME_S / st["frames_per_step"])
        per_s += row["detector_instructions"] / 0.1
        return f"{'yes' if per_s <= mhz * 1e6 else 'no'}, {per_s / (mhz * 1e6):.0%} of the clock at a 0.1 s hop"
    hop = shortest_hop(row["model_instructions"] + row["detector_instructions"], per_frame, mhz)
    if hop is None or hop > WINDOW_S:
        return "no, not even at a 1 s hop"
    return f"{'yes' if hop <= 0.1 + 1e-9 else 'no'}, hop >= {hop:.2f} s"


def table(rows: list[dict]) -> str:
    head = (
        "| image | flash bytes (model) | RAM bytes (arena + stack) | instructions per 1 s window: front end + model "
        "| per 0.1 s hop, streaming | labels = Python TFLM (same input / from audio), max LSB "
        + "".join(f"| real time at {mhz} MHz " for mhz in CLOCKS_MHZ)
        + "|"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        agree = (
            f"{r['labels_same_input']:.1%} / {r['labels_end_to_end']:.1%} of {r['clips']}, "
            f"{r['max_lsb_same_input']} / {r['max_lsb_end_to_end']}"
        )
        if "flash" not in r:
            lines.append(f"| {r['target']} (x86-64) | - | - | - | - | {agree} " + "| - " * len(CLOCKS_MHZ) + "|")
            continue
        per_window = r["frontend_instructions"] + r["model_instructions"]
        cells = [
            r["target"],
            f"{r['flash']:,} ({r['model']:,})",
            f"{r['ram']:,} ({r['arena']:,} + {r['stack']:,})",
            f"{per_window / 1e6:.1f}M = {r['frontend_instructions'] / 1e6:.1f}M + {r['model_instructions'] / 1e6:.1f}M",
            f"{r['hop_instructions'] / 1e6:.1f}M",
            agree,
            *(verdict(r, mhz) for mhz in CLOCKS_MHZ),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def flash_table(rows: list[dict]) -> str:
    """Where each image's flash goes (from its linker map)."""
    lines = [
        "| image | flash | model | TFLite Micro and its kernels | CMSIS-NN | the bundle's code and tables "
        "| C library, start-up (printf and semihosting of the test harness) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "flash_tflm" in r:
            parts = ("flash", "model", "flash_tflm", "flash_cmsis_nn", "flash_bundle", "flash_libc")
            lines.append(f"| {r['target']} | " + " | ".join(f"{r[k]:,}" for k in parts) + " |")
    return "\n".join(lines)


def op_table(rows: list[dict], top: int = 8) -> str:
    """Where the model's instructions go: each op type's own instructions per window, per image."""
    rows = [r for r in rows if r.get("op_instructions")]
    ops = sorted(
        {op for r in rows for op in r["op_instructions"]}, key=lambda op: -rows[0]["op_instructions"].get(op, 0)
    )
    lines = ["| op | " + " | ".join(r["target"] for r in rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for op in ops[:top]:
        cells = [f"{r['op_instructions'].get(op, 0) / 1e6:.2f}M" for r in rows]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("export_dir", type=Path, help="an `asr export ... --mcu` directory")
    p.add_argument("--data", type=Path, required=True, help="Speech Commands tree (its testing split is used)")
    p.add_argument("--clips", type=int, default=200, help="test clips each image runs (default 200)")
    p.add_argument("--targets", default="host,m4,m4-cmsis,m55", help="comma-separated images to build and run")
    p.add_argument("--op-clips", type=int, default=20, help="clips for the per-op table (debug images; 0: none)")
    p.add_argument("--out", type=Path, default=Path("bench/firmware.json"), help="the table as JSON")
    p.add_argument("--work", type=Path, default=Path("bench/firmware"), help="where the bundle and images are built")
    args = p.parse_args(argv)
    export_dir = fresh_bundle(args.export_dir, args.work)
    manifest = Manifest.read(export_dir)
    frames, mels = manifest.features.window_frames, manifest.features.n_mels
    pcm, _ = split_clips(args.data, manifest.labels, args.clips)
    done = json.loads(args.out.read_text()) if args.out.exists() else {}
    if done.get("export_dir") != str(args.export_dir.resolve()) or done.get("clips") != len(pcm):
        done = {"export_dir": str(args.export_dir.resolve()), "clips": len(pcm), "rows": {}}
    for target in args.targets.split(","):
        if target in done["rows"]:
            continue
        print(f"[bench_firmware] {target}: build and run {len(pcm)} clips", file=sys.stderr)
        try:
            row = bench_target(export_dir, target, pcm, frames, mels, args.op_clips)
            stream = dataclasses.asdict(manifest.stream) if manifest.stream else None
            done["rows"][target] = row | {"frames": frames, "stream": stream}
        except firmware.FirmwareError as e:
            print(f"[bench_firmware] {target} failed: {e}", file=sys.stderr)
            continue
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(done, indent=1))
        tmp.replace(args.out)
    print(table(list(done["rows"].values())))
    print()
    print(flash_table(list(done["rows"].values())))
    print()
    print(op_table(list(done["rows"].values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
