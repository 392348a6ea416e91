"""Export keyword models side by side (e.g. kws-tiny tied vs untied at equal depth) and print a table.

    python -m bench.export RUN_TIED/best.pt RUN_UNTIED/best.pt            # trained checkpoints
    python -m bench.export kws-tiny kws-tiny:model.sharing=none,model.unique_blocks=4   # configs, untrained

A config (name or .toml, optional `:key=value,...` overrides) is exported with random weights: sizes, arena,
op counts and latency are real, accuracy is not. Checkpoints calibrate and score on their corpus (--data).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from asr.export.routes import ROUTES

ROWS = [
    ("route", lambda m: m["route"]),
    ("unique parameters", lambda m: f"{m['unique_parameters']:,}"),
    ("effective parameters", lambda m: f"{m['effective_parameters']:,}"),
    ("float32 .tflite bytes", lambda m: f"{m['files']['model_float32.tflite']:,}"),
    ("int8 .tflite bytes", lambda m: f"{m['files']['model_int8.tflite']:,}"),
    ("int8 constant bytes", lambda m: f"{m['weights']['int8_constant_bytes']:,}"),
    ("int8 ops", lambda m: f"{m['tflite']['int8']['ops']}"),
    ("TFLM arena (measured)", lambda m: f"{m['arena_measured_bytes']:,}"),
    (
        "accuracy float32 / int8 %",
        lambda m: (
            f"{m['accuracy']['tflite_float32']:.1f} / {m['accuracy']['tflite_int8']:.1f}" if m["accuracy"] else "n/a"
        ),
    ),
    ("int8 accuracy drop (points)", lambda m: f"{m['accuracy']['int8_drop_points']:+.2f}" if m["accuracy"] else "n/a"),
    ("ai-edge-litert ms/window", lambda m: f"{m['latency_ms']['ai_edge_litert']:.2f}"),
    ("tflite-runtime ms/window", lambda m: f"{m['latency_ms']['tflite_runtime']:.2f}"),
    ("TFLite Micro ms/window", lambda m: f"{m['latency_ms']['tflite_micro']:.2f}"),
    ("conversion s", lambda m: f"{m['conversion_seconds']:.1f}"),
]


def export_config(spec: str, out_dir: Path, calibration: int, route: str | None) -> dict:
    """Export an untrained model built from a config spec `NAME[:key=value,...]`."""
    import torch

    from asr.config import load_config
    from asr.export.pipeline import export_model
    from asr.model import build_model, num_outputs
    from asr.model.report import parameter_report

    name, _, rest = spec.partition(":")
    overrides = {
        k: json.loads(v) if v[:1].isdigit() or v in ("true", "false") else v
        for k, v in (item.split("=", 1) for item in rest.split(",") if item)
    }
    config = load_config(name, overrides)
    torch.manual_seed(0)
    model = build_model(config, num_outputs(config)).eval()
    labels = ["_silence_", "_unknown_", *config.data.keywords]
    rng = np.random.default_rng(0)
    windows = rng.normal(
        -0.5, 0.5, size=(calibration, config.features.num_frames(config.features.clip_samples), config.features.n_mels)
    ).astype(np.float32)
    empty = (windows[:0], np.zeros(0, np.int64))
    return export_model(model, config, labels, out_dir, windows, empty, report=parameter_report(model), route=route)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="checkpoints (.pt) or config specs")
    parser.add_argument("--calibration", type=int, default=100)
    parser.add_argument("--data", type=Path, default=None, help="keyword corpus root for checkpoints")
    parser.add_argument("--route", choices=ROUTES, default=None, help="export route (default: asr export's)")
    args = parser.parse_args(argv)
    from asr.export.pipeline import export_checkpoint

    manifests = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for i, model in enumerate(args.models):
            out = Path(tmp) / f"m{i}"
            if model.endswith(".pt"):
                manifests.append(
                    export_checkpoint(
                        Path(model), out, calibration=args.calibration, data_root=args.data, route=args.route
                    )
                )
            else:
                manifests.append(export_config(model, out, args.calibration, args.route))
    names = [Path(m).name if m.endswith(".pt") else m for m in args.models]
    width = max(len(n) for n in names) + 2
    print(f"| {'':<28} |" + "|".join(f" {n:>{width}} " for n in names) + "|")
    print(f"|{'-' * 30}|" + "|".join("-" * (width + 2) for _ in names) + "|")
    for label, fmt in ROWS:
        print(f"| {label:<28} |" + "|".join(f" {fmt(m):>{width}} " for m in manifests) + "|")
    return 0


if __name__ == "__main__":
    sys.exit(main())
