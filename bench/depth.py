"""What one more tied layer costs on a device: int8 flash, TFLite Micro arena and latency against depth.

Routes: `unrolled` (PyTorch -> ONNX -> onnx2tf, asr.export) and `loop` (tied blocks as one TFLite WHILE loop,
asr.export.loop). Depths N = 2, 4, 8, 12 of the tied model, plus the untied baseline at N = 4. Randomly initialised
models are enough for bytes, arena and latency; accuracy needs a trained checkpoint (--checkpoint).

    python -m bench.depth [--config kws-tiny] [--depths 2 4 8 12] [--data data/generated/commands]
                                [--checkpoint runs/NAME/best.pt] [--out runs/bench/depth]

Prints a table, the marginal bytes per added layer of each route, and saves OUT/depth.png and OUT/depth.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.config import Config, load_config
from asr.export.flatbuffer import inspect_tflite
from asr.export.loop import export_loop_tflite
from asr.export.micro import measure_arena
from asr.export.onnx import export_onnx
from asr.export.parity import torch_scores
from asr.export.tflite import convert
from asr.model import build_model, num_outputs
from asr.runtime.host_interpreters import io_details, run_litert, run_micro
from asr.runtime.interpreter import dequantize, quantize

ROUTES = ("unrolled", "loop")


def windows(
    config: Config, data: Path | None, count: int | None, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Real feature windows when a corpus is given (or exists at the config's root), else seeded Gaussian ones."""
    root = data or Path(config.data.root)
    if root.is_dir():
        from asr.export.windows import corpus_windows

        try:
            x, y, _ = corpus_windows(config, root, split, count)
            return x, y
        except FileNotFoundError as e:  # a corpus without this config's keywords
            if count is None:
                raise
            print(f"{e}; calibrating on Gaussian windows instead")
    if count is None:
        raise FileNotFoundError(f"{root}: keyword corpus not found (needed for accuracy; pass --data)")
    shape = (count, config.features.num_frames(config.features.clip_samples), config.features.n_mels)
    return np.random.default_rng(0).normal(size=shape).astype(np.float32), np.zeros(count, np.int64)


def export(route: str, model: torch.nn.Module, config: Config, calibration: np.ndarray, work: Path) -> Path:
    path = work / f"{route}.tflite"
    if route == "unrolled":
        shape = (1, *calibration.shape[1:])
        onnx_path = export_onnx(model, work / "model.onnx", shape)
        _, int8_path, _ = convert(onnx_path, calibration, work / "onnx2tf")
        int8_path.replace(path)
    else:
        export_loop_tflite(model, config, calibration, path)
    return path


def measure(path: Path, probe: np.ndarray) -> dict:
    """Bytes, smallest TFLite Micro arena, median ms per window in ai-edge-litert and TFLite Micro."""
    info = inspect_tflite(path)
    inp, _ = io_details(path)
    x = quantize(probe, *inp["quantization"])
    arena = measure_arena(path)
    return {
        "file_bytes": info.file_bytes,
        "constant_bytes": info.constant_bytes,
        "ops": len(info.ops),
        "arena_bytes": arena,
        "litert_ms": round(run_litert(path, x)[1], 3),
        "micro_ms": round(run_micro(path, x, arena)[1], 2),
    }


def accuracy(path: Path, model: torch.nn.Module, test: tuple[np.ndarray, np.ndarray]) -> dict:
    """int8 accuracy (ai-edge-litert) on the test windows, and its label agreement with PyTorch."""
    x, y = test
    inp, out = io_details(path)
    scores = dequantize(run_litert(path, quantize(x, *inp["quantization"]))[0], *out["quantization"])
    reference = torch_scores(model, x)
    return {
        "torch_acc": round(100 * float(np.mean(reference.argmax(1) == y)), 2),
        "int8_acc": round(100 * float(np.mean(scores.argmax(1) == y)), 2),
        "agree_torch": round(100 * float(np.mean(scores.argmax(1) == reference.argmax(1))), 2),
    }


def bench(config_name: str, depths: list[int], calibration: np.ndarray, probe: np.ndarray) -> list[dict]:
    cases = [("all", d) for d in depths] + [("none", 4)]
    rows = []
    for sharing, depth in tqdm(cases, desc="models", unit="model"):
        unique = 1 if sharing == "all" else depth
        cfg = load_config(config_name, {"model.depth": depth, "model.sharing": sharing, "model.unique_blocks": unique})
        torch.manual_seed(0)
        model = build_model(cfg, num_outputs(cfg)).eval()
        for route in ROUTES:
            with tempfile.TemporaryDirectory(prefix="bench-depth-") as tmp:
                path = export(route, model, cfg, calibration, Path(tmp))
                rows.append({"sharing": sharing, "depth": depth, "route": route, **measure(path, probe)})
    return rows


def bench_accuracy(checkpoint: Path, data: Path | None, calibration_count: int) -> list[dict]:
    """Both routes' int8 accuracy for a trained checkpoint, on its corpus's test split."""
    from asr.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    calibration, _ = windows(loaded.config, data, calibration_count)
    test = windows(loaded.config, data, None, "testing")
    rows = []
    for route in ROUTES:
        with tempfile.TemporaryDirectory(prefix="bench-depth-") as tmp:
            path = export(route, loaded.model, loaded.config, calibration, Path(tmp))
            rows.append({"route": route, "file_bytes": path.stat().st_size, **accuracy(path, loaded.model, test)})
    return rows


def marginal(rows: list[dict], key: str) -> dict[str, float]:
    """Bytes per added tied layer of each route: least-squares slope over the tied depths."""
    out = {}
    for route in ROUTES:
        pts = [(r["depth"], r[key]) for r in rows if r["route"] == route and r["sharing"] == "all"]
        d, v = np.array(pts, dtype=float).T
        out[route] = float(np.polyfit(d, v, 1)[0]) if len(pts) > 1 else float("nan")
    return out


def print_table(rows: list[dict]) -> None:
    cols = ["sharing", "depth", "route", "file_bytes", "constant_bytes", "ops", "arena_bytes", "litert_ms", "micro_ms"]
    print(" | ".join(f"{c:>14}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r[c]!s:>14}" for c in cols))
    for key in ("file_bytes", "arena_bytes"):
        slopes = marginal(rows, key)
        print(f"marginal {key} per added tied layer: " + ", ".join(f"{k} {v:,.0f} B" for k, v in slopes.items()))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in zip(axes, ("file_bytes", "arena_bytes"), ("int8 .tflite", "TFLite Micro arena"), strict=True):
        for route, marker in zip(ROUTES, "os^", strict=True):
            pts = sorted((r["depth"], r[key] / 1024) for r in rows if r["route"] == route and r["sharing"] == "all")
            line = ax.plot(*zip(*pts, strict=True), marker=marker, label=f"{route}, tied")[0]
            untied = [r[key] / 1024 for r in rows if r["route"] == route and r["sharing"] == "none"]
            ax.scatter(
                [4] * len(untied), untied, marker="x", s=80, color=line.get_color(), label=f"{route}, untied N=4"
            )
        ax.set(xlabel="depth N (layers computed)", ylabel="KiB", title=title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="kws-tiny")
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8, 12])
    parser.add_argument("--data", type=Path, default=None, help="keyword corpus for calibration (default: config's)")
    parser.add_argument("--calibration", type=int, default=100)
    parser.add_argument("--checkpoint", type=Path, default=None, help="trained keyword checkpoint for accuracy")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/depth"))
    args = parser.parse_args()
    config = load_config(args.config)
    args.out.mkdir(parents=True, exist_ok=True)
    calibration, _ = windows(config, args.data, args.calibration)
    rows = bench(args.config, args.depths, calibration, calibration[:20])
    print_table(rows)
    result = {
        "config": args.config,
        "rows": rows,
        "marginal": {k: marginal(rows, k) for k in ("file_bytes", "arena_bytes")},
    }
    if args.checkpoint:
        result["accuracy"] = bench_accuracy(args.checkpoint, args.data, args.calibration)
        for r in result["accuracy"]:
            print(r)
    else:
        print("accuracy: pending (pass --checkpoint runs/NAME/best.pt of a trained keyword model)")
    (args.out / "depth.json").write_text(json.dumps(result, indent=1))
    plot(rows, args.out / "depth.png")
    print(f"wrote {args.out / 'depth.json'} and {args.out / 'depth.png'}")


if __name__ == "__main__":
    main()
