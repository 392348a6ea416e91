"""The tied-depth claim for the CTC model: stored against computed parameters, int8 file and TFLite Micro arena
against depth, through the loop export (a fixed window, per-frame log-probabilities).

Weights are freshly initialised (file and arena do not depend on training); int8 scales are calibrated on real
windows of the sentences corpus. Prints a Markdown table.

    python -m bench.ctc_depth --config asr-tiny --depths 6 12 --data data/generated/sentences
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from asr.config import load_config
from asr.data.librispeech import LibriSpeech
from asr.export import micro
from asr.export.ctc import DEFAULT_OVERLAP_SECONDS, DEFAULT_WINDOW_SECONDS, utterance_windows, window_plan
from asr.export.loop import export_loop_tflite
from asr.features import log_mel
from asr.model import build_model
from asr.model.report import parameter_report
from asr.runtime.ctc_stream import silence_feature


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="asr-tiny")
    parser.add_argument("--depths", type=int, nargs="+", default=[6, 12])
    parser.add_argument("--data", type=Path, default=Path("data/generated/sentences"))
    parser.add_argument("--vocab", type=int, default=64, help="tokenizer pieces (the head's width - 1)")
    parser.add_argument("--window-seconds", type=float, default=DEFAULT_WINDOW_SECONDS)
    parser.add_argument("--calibration", type=int, default=32)
    args = parser.parse_args()
    rows = []
    for depth in args.depths:
        config = load_config(args.config, {"model.depth": depth, "model.lora_rank": 0})
        config, plan = window_plan(config, args.window_seconds, DEFAULT_OVERLAP_SECONDS)
        torch.manual_seed(0)
        model = build_model(config, args.vocab + 1).eval()
        train = LibriSpeech(args.data, config.data.train_split)
        windows = []
        for i in range(len(train)):
            windows.extend(
                utterance_windows(log_mel(train[i][0], config.features), plan, silence_feature(config.features))
            )
            if len(windows) >= args.calibration:
                break
        calib = np.stack(windows[: args.calibration]).astype(np.float32)
        report = parameter_report(model)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "int8.tflite"
            info = export_loop_tflite(model, config, calib, path, peel_first=False)
            arena = micro.measure_arena(path)
            size = path.stat().st_size
        rows.append((depth, config.model, report, size, info["constant_bytes"], arena))
    print(f"CTC model `{args.config}` (lora_rank 0), {args.window_seconds:g} s window, {args.vocab} pieces + blank\n")
    print("| depth | blocks stored | stored params | computed params | int8 .tflite | int8 constants | TFLM arena |")
    print("|---|---|---|---|---|---|---|")
    for depth, m, report, size, constants, arena in rows:
        print(
            f"| {depth} | {m.unique_blocks} ({m.sharing}) | {report['unique_parameters']:,} |"
            f" {report['effective_parameters']:,} | {size:,} B | {constants:,} B | {arena:,} B |"
        )


if __name__ == "__main__":
    main()
