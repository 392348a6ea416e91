"""`asr export CHECKPOINT OUTDIR [--mcu] [--calibration N] [--data ROOT]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a keyword checkpoint (RUN_DIR/best.pt)")
    parser.add_argument("outdir", type=Path, help="export directory to write (replaced only when complete)")
    parser.add_argument("--mcu", action="store_true", help="also write OUTDIR/mcu/, the TFLite Micro bundle")
    parser.add_argument(
        "--calibration", type=int, default=None, metavar="N", help="training windows for int8 calibration (config)"
    )
    parser.add_argument("--data", type=Path, default=None, metavar="ROOT", help="keyword corpus root (config's)")


def run(args: argparse.Namespace) -> int:
    from asr.export.pipeline import export_checkpoint

    manifest = export_checkpoint(
        args.checkpoint, args.outdir, mcu=args.mcu, calibration=args.calibration, data_root=args.data
    )
    print(summary(manifest, args.outdir))
    return 0


def summary(manifest: dict, out_dir: Path) -> str:
    """A few lines people want after an export: sizes, arena, parity, accuracy."""
    files, acc = manifest["files"], manifest["accuracy"]
    lines = [
        f"wrote {out_dir}: " + ", ".join(f"{name} {size:,} B" for name, size in files.items()),
        f"unique parameters {manifest['unique_parameters']:,};"
        f" int8 constants {manifest['weights']['int8_constant_bytes']:,} B;"
        f" {manifest['tflite']['int8']['ops']} ops; TFLite Micro arena {manifest['arena_bytes']:,} B"
        f" (measured {manifest['arena_measured_bytes']:,} B)",
        "parity: " + json.dumps(manifest["parity"]["int8"]["max_lsb_diff"]) + " LSB; float max diff "
        f"{manifest['parity']['float32']['tflite_float32_max_abs_diff']:.2e}",
    ]
    if not manifest["parity"]["int8"]["within_tolerance"]:
        lines.append(f"warning: int8 runtimes differ by more than {manifest['parity']['int8']['lsb_tolerance']} steps")
    if acc:
        lines.append(
            f"accuracy on {acc['windows']} test windows: torch {acc['torch']:.1f}%,"
            f" float32 {acc['tflite_float32']:.1f}%,"
            f" int8 {acc['tflite_int8']:.1f}% (drop {acc['int8_drop_points']:+.1f} points)"
        )
        if acc["int8_drop_points"] > 1.0:
            lines.append("warning: int8 loses more than 1 accuracy point; try more --calibration windows")
    return "\n".join(lines)
