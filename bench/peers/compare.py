"""The comparison itself: each system's row (accuracy, wake-word metrics, stored bytes, arena, MACs, latency),
ratios against the tied model, the markdown + JSON table and the plots. `bench/compare.py` is the command.

Learned systems are trained by the project's own loop (`asr.train.loop.train`, which resumes or returns at once
when RUN_DIR already holds a finished run) and exported by the project's int8 path (`asr.export`), so every
neural row is measured on the artifact a device would run: the int8 .tflite in ai-edge-litert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.config import Config, load_config
from asr.errors import InputError
from asr.evaluation.metrics import FA_BUDGET, TARGET_RECALL, peer_operating_points
from asr.files import save_figure_atomic, write_text_atomic
from asr.model.sharing import sharing_plan
from bench.peers.testset import TestSet
from bench.peers.wakeword import Stream, neural_sweep, point

# key -> config. The tied model comes first: every ratio is against it.
LEARNED = {"tied": "compare-tied", "lora4": "compare-lora4", "untied": "compare-untied", "dscnn": "compare-dscnn"}
PEER = "pocketsphinx"
REFERENCE = "tied"
# Columns compared as a ratio to the tied model's.
RATIO_KEYS = ("unique_parameters", "stored_bytes", "arena_bytes", "macs", "latency_ms")
# Quick mode (tests, smoke runs): a tiny model of the same kind, like the test fixtures' (tests/fixtures_model.py).
QUICK_MODEL = {
    "model.d_model": 32,
    "model.n_heads": 4,
    "model.ffn_dim": 64,
    "model.kernel_size": 7,
    "model.depth": 2,
    "model.dropout": 0.0,
    "data.unknown_fraction": 1.0,
    "train.batch_size": 32,
    "train.lr": 3e-3,
    "train.warmup_steps": 10,
}


@dataclass
class Learned:
    """A learned system: its config and run directory, or an existing checkpoint / export to use as they are."""

    key: str
    title: str
    config: Config
    run_dir: Path
    checkpoint: Path | None = None  # default: RUN_DIR/best.pt, trained when missing
    export_dir: Path | None = None  # default: RUN_DIR/export, exported when missing or older than the checkpoint
    export: bool = True  # False: score the float32 PyTorch model (quick runs: no onnx2tf conversion)


def learned_system(key: str, runs_dir: Path, overrides: dict, quick: bool = False) -> Learned:
    """The system `key` of LEARNED with `overrides` (data root, keywords, steps) applied to its config."""
    extra = dict(overrides)
    if quick and key != "dscnn":
        extra = QUICK_MODEL | ({"model.unique_blocks": QUICK_MODEL["model.depth"]} if key == "untied" else {}) | extra
    config = load_config(LEARNED[key], extra)
    return Learned(key, title(config), config, runs_dir / config.name)


def title(config: Config) -> str:
    """A row title that says what the config is."""
    m = config.model
    if m.arch == "dscnn":
        return "DS-CNN-S"
    shape = f"N={m.depth}, M={len(set(sharing_plan(m.sharing, m.depth, m.unique_blocks)))}, d={m.d_model}"
    if m.sharing == "none":
        return f"untied Conformer ({shape})"
    lora = f" + LoRA r{m.lora_rank}" if m.lora_rank else ""
    return f"tied Conformer{lora} ({m.sharing}, {shape})"


def ensure_trained(system: Learned, progress: bool = True) -> Path:
    """The system's best checkpoint, training (or resuming) its run when needed."""
    if system.checkpoint is not None:
        return system.checkpoint
    from asr.train.loop import train

    train(system.config, system.run_dir, progress=progress)  # returns at once for a finished run
    return system.run_dir / "best.pt"


def ensure_exported(system: Learned, checkpoint: Path, data_root: Path) -> Path | None:
    """The int8 export directory of `checkpoint` (None when the system is scored in PyTorch)."""
    if system.export_dir is not None or not system.export:
        return system.export_dir
    from asr.export.pipeline import export_checkpoint

    out = system.run_dir / "export"
    manifest = out / "manifest.json"
    if manifest.is_file() and manifest.stat().st_mtime >= checkpoint.stat().st_mtime:
        if json.loads(manifest.read_text()).get("source", {}).get("checkpoint") == str(checkpoint):
            return out
    export_checkpoint(checkpoint, out, data_root=data_root)
    return out


class FeatureCache:
    """Test-set feature windows per (condition, feature spec): computed once, shared by every neural system."""

    def __init__(self, testset: TestSet):
        self.testset, self._cache = testset, {}

    def get(self, condition: str, spec) -> np.ndarray:
        key = (condition, json.dumps(spec.to_dict(), sort_keys=True))
        if key not in self._cache:
            self._cache[key] = self.testset.features(condition, spec)
        return self._cache[key]


def training_seconds(metrics: Path) -> float | None:
    """Wall time of the run's last logged training step (None when the run's metrics are not there)."""
    if not metrics.is_file():
        return None
    times = [json.loads(line).get("elapsed_s") for line in metrics.read_text().splitlines() if line.strip()]
    times = [t for t in times if t is not None]
    return round(times[-1], 1) if times else None


def neural_row(system: Learned, checkpoint: Path, export_dir: Path | None, features: FeatureCache, stream: Stream):
    """Every column of one learned system."""
    from asr.export.parity import torch_scores
    from asr.model.checkpoint import load_checkpoint
    from asr.model.report import parameter_report
    from bench.peers.cost import count_macs, litert_latency_ms

    loaded = load_checkpoint(checkpoint)
    testset, spec = features.testset, loaded.config.features
    if loaded.labels != testset.labels:
        raise InputError(f"{checkpoint}: labels {loaded.labels} differ from the test set's {testset.labels}")
    window_shape = (1, spec.num_frames(spec.clip_samples), spec.n_mels)
    report = parameter_report(loaded.model)
    row = {
        "system": system.key,
        "title": system.title,
        "config": system.config.name,
        "checkpoint": str(checkpoint),
        "train_steps": system.config.train.steps,
        "best_step": loaded.step,
        "train_seconds": training_seconds(checkpoint.parent / "metrics.jsonl"),
        "unique_parameters": int(report["unique_parameters"]),
        "effective_parameters": int(report["effective_parameters"]),
        "macs": count_macs(loaded.model, window_shape),
    }
    if export_dir is not None:
        from asr.runtime.bundle import Manifest
        from asr.runtime.interpreter import TFLiteModel

        manifest = Manifest.read(export_dir)
        int8_path = export_dir / manifest.models["int8"]
        model = TFLiteModel(int8_path, backend="ai-edge-litert")  # float windows in, dequantized scores out
        output_kind = manifest.output_kind
        row |= {
            "backend": "int8 TFLite, ai-edge-litert",
            "export_dir": str(export_dir),
            "stored_bytes": int8_path.stat().st_size,
            "arena_bytes": manifest.arena_bytes,
            "latency_ms": round(litert_latency_ms(int8_path, features.get("clean", spec)[:200]), 4),
        }
    else:

        def model(window: np.ndarray) -> np.ndarray:
            return torch_scores(loaded.model, window[None])[0]

        output_kind = "logits"
        row |= {"backend": "float32 PyTorch (not exported)", "stored_bytes": None, "arena_bytes": None}
        row["latency_ms"] = None
    for condition in ("clean", "noisy"):
        x = features.get(condition, spec)
        scores = np.stack([model(w) for w in x]) if export_dir is not None else torch_scores(loaded.model, x)
        row[f"accuracy_{condition}"] = float(np.mean(scores.argmax(1) == testset.targets))
    row["wake"] = neural_sweep(stream, model, loaded.labels, spec, output_kind)
    return row


def pocketsphinx_row(testset: TestSet, unknown_words: list[str], stream: Stream, thresholds, jobs: int) -> dict:
    """pocketsphinx: JSGF closed-set accuracy, keyphrase wake-word sweep, model bytes, decoding time."""
    import importlib.metadata

    from bench.peers import pocketsphinx as ps

    recognizer = ps.GrammarRecognizer(testset.labels, unknown_words)
    row = {
        "system": PEER,
        "title": f"pocketsphinx {importlib.metadata.version('pocketsphinx')} (en-us)",
        "backend": "pocketsphinx JSGF grammar / keyphrase search",
        "train_steps": None,
        "unique_parameters": None,
        "stored_bytes": recognizer.stored_bytes(),
        "arena_bytes": None,
        "macs": None,
        "grammar_words": len(recognizer.words),
        "words_without_pronunciation": recognizer.missing,
        "notes": [
            f"grammar: {len(testset.labels) - 2} keywords + {len(recognizer.words) - len(testset.labels) + 2} "
            "unknown words of the training split (a hypothesis among them = _unknown_; empty = _silence_)",
            "stored bytes: acoustic model files + dictionary entries of the grammar's words",
            "latency: median decoding time of one 1 s clip with the grammar",
        ],
    }
    seconds = None
    for condition in ("clean", "noisy"):
        clips = testset.clean if condition == "clean" else testset.noisy
        preds, times = ps.classify_all(testset.labels, unknown_words, clips, jobs)
        row[f"accuracy_{condition}"] = float(np.mean(preds == testset.targets))
        seconds = times if seconds is None else seconds
    row["latency_ms"] = round(float(np.median(seconds)) * 1000, 3)
    labels = ["_silence_", "_unknown_", stream.wake_word]
    sweep, decode_s = [], 0.0
    for threshold, found, spent in ps.spot_sweep(stream.audio, stream.wake_word, thresholds, jobs):
        sweep.append(point(stream, labels, found, threshold))
        decode_s += spent
    row["wake"] = peer_operating_points(sweep)
    row["keyphrase_real_time_factor"] = round(decode_s / len(thresholds) / stream.duration_s, 4)
    return row


def add_ratios(rows: list[dict], reference: str = REFERENCE) -> None:
    """`KEY_vs_tied` = row[KEY] / tied[KEY] for every ratio column both rows have."""
    ref = next((r for r in rows if r["system"] == reference), None)
    for row in rows:
        for key in RATIO_KEYS:
            ok = ref is not None and row.get(key) is not None and ref.get(key)
            row[f"{key}_vs_{reference}"] = round(row[key] / ref[key], 3) if ok else None
        if row.get("wake"):
            at_budget, at_recall = row["wake"]["at_fa_budget"], row["wake"]["at_target_recall"]
            row["wake_recall_at_fa_budget"] = at_budget["recall"] if at_budget else None
            row["wake_fa_per_hour_at_target_recall"] = at_recall["false_accepts_per_hour"] if at_recall else None


def _num(value, ratio=None, fmt="{:,}") -> str:
    if value is None:
        return "-"
    text = fmt.format(value)
    return f"{text} ({ratio:.2f}x)" if ratio is not None else text


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def markdown_table(rows: list[dict], meta: dict) -> str:
    """The table people read: one row per system, ratios against the tied model in parentheses."""
    head = ["system", "acc clean", "acc noisy", f"wake recall @<={FA_BUDGET:g} FA/h"]
    head += [f"wake FA/h @>={TARGET_RECALL:.0%} recall", "unique params", "stored bytes", "arena bytes"]
    head += ["MACs / window", "ms / window", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["title"],
            _pct(r.get("accuracy_clean")),
            _pct(r.get("accuracy_noisy")),
            _pct(r.get("wake_recall_at_fa_budget")),
            "never"
            if r.get("wake_fa_per_hour_at_target_recall") is None
            else f"{r['wake_fa_per_hour_at_target_recall']:.1f}",
        ]
        for key, fmt in zip(RATIO_KEYS, ("{:,}", "{:,}", "{:,}", "{:,}", "{:.3f}"), strict=True):
            cells.append(_num(r.get(key), r.get(f"{key}_vs_{REFERENCE}"), fmt))
        cells.append("-" if r.get("train_seconds") is None else f"{r['train_seconds']:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        f"Test set: {meta['test_clips']} clips of held-out voices ({meta['data_root']}, split `testing`, "
        f"labels {meta['labels']}); noisy = the same clips with `_background_noise_` at {meta['snr_db'][0]:g}-"
        f"{meta['snr_db'][1]:g} dB SNR, fixed per clip.",
        f"Wake word `{meta['wake_word']}` on a {meta['stream_minutes']:.1f}-minute stream ({meta['wake_events']} wake "
        f"events, {meta['negative_events']} negative events: unknown words, the other keywords, background speech); "
        f"thresholds swept on the same stream (models: posterior 0.05-0.99; pocketsphinx: kws_threshold "
        f"{min(meta['kws_thresholds']):g}-{max(meta['kws_thresholds']):g}), see det.png.",
        f"Training budget: {meta['train_steps']} steps of batch {meta['batch_size']} for every learned model "
        "(the project's loop, same data and augmentation; best dev checkpoint).",
        "Stored bytes: the int8 .tflite file (pocketsphinx: its acoustic model + dictionary entries). Arena: TFLite "
        "Micro arena from the export manifest. MACs: torch FlopCounterMode (matmul + conv) / 2. ms / window: "
        "ai-edge-litert int8, one thread, median (pocketsphinx: decoding one 1 s clip).",
    ]
    for r in rows:
        notes += [f"- {r['title']}: {n}" for n in r.get("notes", [])]
    return "\n".join(lines + notes) + "\n"


def plot_accuracy_vs_bytes(rows: list[dict], path: Path) -> None:
    """Clean (filled) and noisy (open) accuracy against stored bytes, one colour per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(rows):
        if r.get("stored_bytes") is None:
            continue
        color = f"C{i}"
        x = r["stored_bytes"] / 1024
        ax.scatter([x], [100 * r["accuracy_clean"]], color=color, s=60, label=r["title"])
        ax.scatter([x], [100 * r["accuracy_noisy"]], facecolors="none", edgecolors=color, s=60)
        ax.plot([x, x], [100 * r["accuracy_noisy"], 100 * r["accuracy_clean"]], color=color, alpha=0.4)
    ax.set(xscale="log", xlabel="stored bytes (KiB, log)", ylabel="accuracy on held-out voices (%)")
    ax.set_title("accuracy vs stored bytes (filled: clean, open: noisy 5-20 dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save_figure_atomic(fig, path, dpi=120, bbox_inches="tight")


def plot_det(rows: list[dict], path: Path, wake_word: str) -> None:
    """Every system's wake-word DET curve on one figure, operating points starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def fa(s: dict) -> float:
        return max(s["false_accepts_per_hour"], 0.1)  # log axis: 0 FA/h drawn at 0.1

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(rows):
        sweep = [s for s in r.get("wake", {}).get("sweep", []) if s["recall"] is not None]
        if not sweep:
            continue
        pts = [(fa(s), 100 * s["false_reject_rate"]) for s in sweep]  # in threshold order
        ax.plot(*zip(*pts, strict=True), ".-", color=f"C{i}", label=r["title"])
        op = r["wake"]["at_fa_budget"]
        if op is not None:
            ax.plot(fa(op), 100 * op["false_reject_rate"], "*", color=f"C{i}", markersize=13)
    ax.set(xscale="log", xlabel="false accepts per hour (0 drawn at 0.1)", ylabel="false reject rate (%)")
    ax.set_title(f"wake word '{wake_word}': DET curves (star: best recall at <= {FA_BUDGET:g} FA/h)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure_atomic(fig, path, dpi=120, bbox_inches="tight")


def write_outputs(rows: list[dict], meta: dict, out_dir: Path) -> dict[str, Path]:
    """compare.md, compare.json, accuracy_vs_bytes.png and det.png in `out_dir` (each written atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out_dir / "compare.md",
        "json": out_dir / "compare.json",
        "accuracy_plot": out_dir / "accuracy_vs_bytes.png",
        "det_plot": out_dir / "det.png",
    }
    for key, text in (
        ("markdown", markdown_table(rows, meta)),
        ("json", json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n"),
    ):
        write_text_atomic(paths[key], text)
    plot_accuracy_vs_bytes(rows, paths["accuracy_plot"])
    plot_det(rows, paths["det_plot"], meta["wake_word"])
    return paths
