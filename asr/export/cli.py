"""`asr export CHECKPOINT OUTDIR [--route unrolled|loop] [--mcu] [--calibration N] [--data ROOT]`.

A causal keyword model (`model.causal`, e.g. `kws-stream`) exports as its streaming step (asr.export.stream)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asr.errors import InputError
from asr.export.routes import DEFAULT_ROUTE, ROUTES
from asr.runtime.bundle import Manifest


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a keyword checkpoint (RUN_DIR/best.pt)")
    parser.add_argument("outdir", type=Path, help="export directory to write (replaced only when complete)")
    parser.add_argument("--mcu", action="store_true", help="also write OUTDIR/mcu/, the TFLite Micro bundle")
    parser.add_argument(
        "--route",
        choices=ROUTES,
        default=None,
        help=f"how the .tflite files are made: 'unrolled' (PyTorch -> ONNX -> onnx2tf, any model) or 'loop' (tied "
        f"blocks as TFLite WHILE loops: flash and arena flat in depth; keyword and CTC Conformers). Default: "
        f"{DEFAULT_ROUTE}, or unrolled with a note for a model the loop route cannot take",
    )
    parser.add_argument(
        "--calibration", type=int, default=None, metavar="N", help="training windows for int8 calibration (config)"
    )
    parser.add_argument("--data", type=Path, default=None, metavar="ROOT", help="corpus root (config's)")
    parser.add_argument("--window-seconds", type=float, default=None, help="CTC models: the fixed window (3 s)")
    parser.add_argument("--overlap-seconds", type=float, default=None, help="CTC models: window overlap (1 s)")
    parser.add_argument(
        "--phones",
        action="store_true",
        help="a keyword model: export its phone head as a CTC model (wake words by text)",
    )
    parser.add_argument("--parity", type=int, default=None, metavar="N", help="CTC models: test utterances checked")


def run(args: argparse.Namespace) -> int:
    from asr.model.checkpoint import read_state

    task = read_state(args.checkpoint)["config"].get("task") if args.checkpoint.is_file() else "kws"
    if task == "ctc" or args.phones:  # CTC over pieces, or a keyword model's phone head
        from asr.export import ctc

        if args.mcu or (args.route or "loop") != "loop":
            raise InputError(f"{args.checkpoint}: a CTC model exports through the loop route only, without --mcu (yet)")
        options = {"window_s": args.window_seconds, "overlap_s": args.overlap_seconds, "parity_utterances": args.parity}
        export = ctc.export_ctc_checkpoint if task == "ctc" else ctc.export_phone_checkpoint
        options = {k: v for k, v in options.items() if v is not None}
        manifest = export(args.checkpoint, args.outdir, calibration=args.calibration, data_root=args.data, **options)
        print(ctc.summary(manifest, args.outdir))
        return 0
    from asr.export.pipeline import export_checkpoint

    manifest = export_checkpoint(
        args.checkpoint, args.outdir, mcu=args.mcu, calibration=args.calibration, data_root=args.data, route=args.route
    )
    print(summary(manifest, args.outdir))
    return 0


def summary(manifest: Manifest, out_dir: Path) -> str:
    """A few lines people want after an export: sizes, arena, parity, accuracy."""
    report = manifest.report
    files, acc, q = report["files"], report["accuracy"], report["parity"]["int8"]
    lines = [f"note: {report['route_note']}"] if "route_note" in report else []
    lines += [
        f"wrote {out_dir} ({report['route']} route): "
        + ", ".join(f"{name} {size:,} B" for name, size in files.items()),
        f"unique parameters {report['unique_parameters']:,};"
        f" int8 constants {report['weights']['int8_constant_bytes']:,} B;"
        f" {report['tflite']['int8']['ops']} ops; TFLite Micro arena {manifest.arena_bytes:,} B"
        f" (measured {report['arena_measured_bytes']:,} B)",
        "int8 parity: "
        + json.dumps(q["max_lsb_diff"])
        + " LSB; label agreement "
        + json.dumps({k: round(v, 3) for k, v in q["label_agreement"].items()})
        + f"; float max diff {report['parity']['float32']['tflite_float32_max_abs_diff']:.2e}",
    ]
    if not q["within_tolerance"] and q["criterion"] == "lsb":
        lines.append(f"warning: int8 runtimes differ by more than {q['lsb_tolerance']} steps")
    elif not q["within_tolerance"]:
        lines.append(f"warning: int8 runtimes pick the same label on less than {q['label_agreement_min']:.0%}")
    if acc:
        lines.append(
            f"accuracy on {acc['windows']} test windows: torch {acc['torch']:.1f}%,"
            f" float32 {acc['tflite_float32']:.1f}%,"
            f" int8 {acc['tflite_int8']:.1f}% (drop {acc['int8_drop_points']:+.1f} points;"
            f" int8 picks PyTorch's label on {acc['int8_vs_torch_label_agreement']:.1%})"
        )
        if acc["int8_drop_points"] > 1.0:
            lines.append("warning: int8 loses more than 1 accuracy point; try more --calibration windows")
    if manifest.stream is not None:
        st = manifest.stream
        lines.append(
            f"streaming step: {st.frames_in} feature frames in, one step every {st.frames_per_step} frames, the"
            f" keyword head the mean of the last {st.head_frames} steps ({report['latency_ms']['tflite_micro']:.2f} ms"
            " a step in TFLite Micro on this CPU)"
        )
    if "mcu_model" in report:
        m = report["mcu_model"]
        lines.append(
            f"MCU bundle: {out_dir}/mcu/, model array {m['bytes']:,} B (one zero point per weight: "
            f"-{m['saved_bytes']:,} B, the same outputs in TFLite Micro)"
        )
    return "\n".join(lines)
