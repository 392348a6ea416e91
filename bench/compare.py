"""The tied keyword model side by side with its peers, in one run: pocketsphinx, the untied Conformer, DS-CNN and a
relaxed plan, on the held-out voices of the commands corpus (clean and noisy) and on a wake-word stream.

    python -m bench.compare                     # default corpus; trains what runs/ lacks; about 30 min on 2 cores
    python -m bench.compare --quick --data DIR   # tiny models, 30 steps, short stream: a smoke run of the machinery

Writes OUT/compare.md + compare.json (the table, ratios against the tied model), OUT/accuracy_vs_bytes.png,
OUT/det.png (wake-word DET curves of every system), OUT/stream/ (the stream used) and, unless --no-scaling,
OUT/scaling.{md,json,png}: how stored bytes, TFLite Micro arena and latency grow with depth N for tied (M=1) and
untied models (random weights, the standard onnx2tf route, measured with bench/depth.py's functions).
Learned models are trained with the same budget (--steps, default the compare-* configs' train.steps) and reused
from RUNS/NAME/ when already trained and exported, so a second run is fast.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from asr.config import load_config
from asr.data.stream import make_stream, write_events
from asr.evaluation.metrics import Event, peer_operating_points
from bench import depth as bench_depth
from bench.peers import compare
from bench.peers.pocketsphinx import KWS_THRESHOLDS
from bench.peers.testset import load_testset
from bench.peers.wakeword import Stream

SYSTEMS = [*compare.LEARNED, compare.PEER]
SCALING_CONFIG = "compare-tied"


def pairs(items: list[str], flag: str) -> dict[str, Path]:
    out = {}
    for item in items:
        key, sep, path = item.partition("=")
        if not sep or key not in compare.LEARNED:
            raise SystemExit(f"{flag} {item!r}: expected KEY=PATH with KEY one of {list(compare.LEARNED)}")
        out[key] = Path(path)
    return out


def build_stream(args, root: Path, out_dir: Path) -> Stream:
    """The wake-word stream: the wake word's held-out clips among unknown words (every other word of the corpus,
    the other keywords included) and background speech, over background noise; saved to OUT/stream/."""
    sentences = args.sentences if args.sentences and args.sentences.is_dir() else None
    audio, events = make_stream(
        root, [args.wake_word], minutes=args.stream_minutes, seed=args.seed, sentences_root=sentences, keyword_share=0.3
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    from asr.audio import write_audio

    write_audio(out_dir / "stream.wav", audio, 16000)
    write_events(out_dir / "events.csv", events)
    return Stream(audio, [Event(onset, label, offset) for onset, label, offset in events], args.wake_word)


def cached_peer(path: Path, testset, unknown: list[str], stream: Stream, args) -> dict:
    """The pocketsphinx row, reused from `path` when the test set, stream and settings are the same."""
    import hashlib

    digest = hashlib.sha256()
    for array in (testset.clean, testset.noisy, testset.targets, stream.audio):
        digest.update(array.tobytes())
    key = {"data": digest.hexdigest(), "unknown": unknown, "events": len(stream.events), "kws": args.kws_thresholds}
    if path.is_file() and json.loads(path.read_text()).get("key") == key:
        row = json.loads(path.read_text())["row"]
        row["wake"] = peer_operating_points(row["wake"]["sweep"])  # operating points by the current rule
        return row
    row = compare.pocketsphinx_row(testset, unknown, stream, args.kws_thresholds, args.jobs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"key": key, "row": row}))
    os.replace(tmp, path)
    return row


def scaling(args, root: Path, out_dir: Path) -> list[dict]:
    """Tied (M=1) and untied models at each depth: int8 bytes, arena, latency (cached in OUT/scaling.json)."""
    import tempfile

    import torch
    from tqdm import tqdm

    from asr.model import build_model, num_outputs

    cache = out_dir / "scaling.json"
    base = load_config(SCALING_CONFIG, {"data.root": str(root)})
    key = {"config": base.to_dict()["model"], "depths": args.scaling_depths}
    if cache.is_file() and json.loads(cache.read_text()).get("key") == key:
        return json.loads(cache.read_text())["rows"]
    calibration, _ = bench_depth.windows(base, root, 64)
    rows = []
    cases = [(sharing, n) for n in args.scaling_depths for sharing in ("all", "none")]
    for sharing, depth in tqdm(cases, desc="scaling", unit="model"):
        unique = 1 if sharing == "all" else depth
        cfg = load_config(
            SCALING_CONFIG, {"model.depth": depth, "model.sharing": sharing, "model.unique_blocks": unique}
        )
        torch.manual_seed(0)
        model = build_model(cfg, num_outputs(cfg)).eval()
        with tempfile.TemporaryDirectory(prefix="compare-scaling-") as tmp:
            path = bench_depth.export("unrolled", model, cfg, calibration, Path(tmp))
            measured = bench_depth.measure(path, calibration[:20])
        params = sum(p.numel() for p in model.parameters())
        rows.append({"sharing": sharing, "depth": depth, "unique_parameters": params, **measured})
    tmp = cache.with_name(".scaling.json.tmp")
    tmp.write_text(json.dumps({"key": key, "rows": rows}, indent=1))
    os.replace(tmp, cache)
    return rows


def scaling_table(rows: list[dict]) -> str:
    lines = ["| N | sharing | unique params | int8 bytes | arena bytes | litert ms | TFLM ms |", "|---" * 7 + "|"]
    for r in sorted(rows, key=lambda r: (r["depth"], r["sharing"] != "all")):
        name = "tied (M=1)" if r["sharing"] == "all" else "untied (M=N)"
        lines.append(
            f"| {r['depth']} | {name} | {r['unique_parameters']:,} | {r['file_bytes']:,} | {r['arena_bytes']:,} "
            f"| {r['litert_ms']:.3f} | {r['micro_ms']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def plot_scaling(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = (("file_bytes", "int8 .tflite (KiB)", 1024), ("arena_bytes", "TFLite Micro arena (KiB)", 1024))
    panels += (("litert_ms", "ai-edge-litert ms / window", 1),)
    for ax, (key, title, unit) in zip(axes, panels, strict=True):
        for sharing, label, marker in (("all", "tied (M=1)", "o"), ("none", "untied (M=N)", "s")):
            pts = sorted((r["depth"], r[key] / unit) for r in rows if r["sharing"] == sharing)
            ax.plot(*zip(*pts, strict=True), marker=marker, label=label)
        ax.set(xlabel="depth N (layers computed)", title=title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("cost against depth, standard onnx2tf route (random weights)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("data/generated/commands"), help="commands corpus root")
    p.add_argument("--sentences", type=Path, default=Path("data/generated/sentences"), help="background speech")
    p.add_argument("--out", type=Path, default=Path("artifacts/compare"))
    p.add_argument("--runs", type=Path, default=None, help="run directories (default: runs/, quick: OUT/runs)")
    p.add_argument("--systems", nargs="*", choices=SYSTEMS, default=SYSTEMS, help="none: only the scaling study")
    p.add_argument("--steps", type=int, default=None, help="training steps of every learned model (same for all)")
    p.add_argument("--checkpoint", action="append", default=[], metavar="KEY=PATH", help="use this checkpoint")
    p.add_argument("--export", action="append", default=[], metavar="KEY=DIR", help="use this export directory")
    p.add_argument("--no-export", action="store_true", help="score learned models in PyTorch (no onnx2tf)")
    p.add_argument("--wake-word", default="marvin")
    p.add_argument("--stream-minutes", type=float, default=None, help="default 10 (quick: 0.5)")
    p.add_argument("--kws-thresholds", type=float, nargs="+", default=None, help="pocketsphinx keyphrase sweep")
    p.add_argument("--jobs", type=int, default=2, help="pocketsphinx decoder processes")
    p.add_argument("--scaling-depths", type=int, nargs="+", default=[2, 4, 8, 12])
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny models, 30 steps, 0.5 min stream, 3 thresholds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.stream_minutes is None:
        args.stream_minutes = 0.5 if args.quick else 10.0
    if args.kws_thresholds is None:
        args.kws_thresholds = [1e-40, 1e-20, 1e-5] if args.quick else list(KWS_THRESHOLDS)
    if args.quick:
        args.no_scaling = True
        args.steps = args.steps or 30
    args.runs = args.runs or (args.out / "runs" if args.quick else Path("runs"))
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    timings = {}
    root = args.data
    if not root.is_dir():
        raise SystemExit(f"{root}: commands corpus not found (generate it with `asr data synth`)")
    keywords = load_config(compare.LEARNED["tied"]).data.keywords
    if args.quick:  # a tiny corpus has a few of the keywords
        keywords = [k for k in keywords if (root / k).is_dir()]
    overrides = {"data.root": str(root), "data.keywords": keywords}
    if args.steps:
        every = max(1, min(250, args.steps))
        overrides |= {"train.steps": args.steps, "train.eval_every": every, "train.checkpoint_every": every}
    checkpoints, exports = pairs(args.checkpoint, "--checkpoint"), pairs(args.export, "--export")

    t = time.perf_counter()
    testset = load_testset(root, keywords)
    stream = build_stream(args, root, args.out / "stream")
    timings["test set and stream"] = time.perf_counter() - t
    neural, peers = [], []  # the peer is scored first: its decoder processes fork before any model is loaded
    if compare.PEER in args.systems:
        from asr.data.speech_commands import SpeechCommands

        t = time.perf_counter()
        train = SpeechCommands(root, "train", keywords)
        unknown = sorted({path.parent.name for path, label in train.items if label == 1})
        peers.append(cached_peer(args.out / "pocketsphinx.json", testset, unknown, stream, args))
        timings[compare.PEER] = time.perf_counter() - t
    features = compare.FeatureCache(testset)
    learned = [k for k in compare.LEARNED if k in args.systems]
    systems = [compare.learned_system(k, args.runs, overrides, quick=args.quick) for k in learned]
    for system in systems:
        t = time.perf_counter()
        system.checkpoint = checkpoints.get(system.key)
        system.export_dir = exports.get(system.key)
        system.export = not args.no_export
        best = compare.ensure_trained(system, progress=not args.no_progress)
        export_dir = compare.ensure_exported(system, best, root)
        neural.append(compare.neural_row(system, best, export_dir, features, stream))
        timings[system.key] = time.perf_counter() - t
    rows = neural + peers
    compare.add_ratios(rows)
    first = systems[0].config if systems else load_config(compare.LEARNED["tied"])
    meta = {
        "data_root": str(root),
        "labels": testset.labels,
        "test_clips": len(testset.targets),
        "snr_db": [5.0, 20.0],
        "wake_word": args.wake_word,
        "stream_minutes": stream.duration_s / 60,
        "wake_events": stream.wake_events,
        "negative_events": len(stream.events) - stream.wake_events,
        "train_steps": first.train.steps,
        "batch_size": first.train.batch_size,
        "kws_thresholds": args.kws_thresholds,
        "quick": args.quick,
    }
    if not args.no_scaling:
        t = time.perf_counter()
        scaled = scaling(args, root, args.out)
        tmp = args.out / ".scaling.md.tmp"
        tmp.write_text(scaling_table(scaled))
        os.replace(tmp, args.out / "scaling.md")
        plot_scaling(scaled, args.out / "scaling.png")
        print(scaling_table(scaled))
        timings["scaling"] = time.perf_counter() - t
    meta["seconds"] = {k: round(v, 1) for k, v in timings.items()} | {"total": round(time.perf_counter() - started, 1)}
    if not rows:  # `--systems` with no system: the scaling study alone leaves the comparison's table as it was
        return {"rows": rows, "meta": meta, "paths": {}}
    paths = compare.write_outputs(rows, meta, args.out)
    print(paths["markdown"].read_text())
    print(f"wall time {meta['seconds']['total']:.0f} s; wrote " + ", ".join(str(p) for p in paths.values()))
    return {"rows": rows, "meta": meta, "paths": paths}


if __name__ == "__main__":
    main()
