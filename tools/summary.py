"""The main job's closing summary: what a user of `make demo` wants to know, from the reports the steps wrote.

Reads RUN/eval_testing.json and RUN/eval_testing_noisy.json (`asr eval [--noisy]`), EXPORT/manifest.json
(`asr export`) and STREAM/report.json (`asr eval-stream`); prints a table and writes it to artifacts/summary.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(path: Path) -> dict:
    if not path.is_file():
        raise SystemExit(f"summary: {path} is missing: run `make demo` (the step that writes it failed or was skipped)")
    return json.loads(path.read_text())


def rows(evaluation: dict, noisy: dict, manifest: dict, stream: dict) -> list[tuple[str, str]]:
    acc = manifest["accuracy"]
    chosen = stream["chosen"]
    overall = chosen["overall"]
    latency = overall["latency_mean_s"]
    own = manifest.get("detector", {}).get("label_thresholds", {})  # the wake word's, chosen on validation voices
    wake_rows = [
        (f"wake word {word!r} at its own threshold {threshold:.2f}",
         f"recall {100 * chosen['per_label'][word]['recall']:.1f}%, "
         f"{chosen['per_label'][word]['false_accepts_per_hour']:.1f} false wakes per hour")
        for word, threshold in own.items()
    ]  # fmt: skip
    return [
        ("test clips (voices never heard in training)", f"{evaluation['examples']}"),
        ("accuracy, PyTorch float", f"{100 * evaluation['accuracy']:.2f}%"),
        ("accuracy, int8 TFLite", f"{acc['tflite_int8']:.2f}% (drop {acc['int8_drop_points']:+.2f} points)"),
        ("accuracy, PyTorch float, noise at 5-20 dB SNR", f"{100 * noisy['accuracy']:.2f}%"),
        ("keyword-only accuracy (mean keyword recall)", f"{100 * evaluation['keyword_accuracy']:.1f}%"),
        ("words never heard in training called a keyword",
         f"{100 * evaluation['false_keyword']['unseen_words']['rate']:.1f}%"),
        ("stream", f"{stream['duration_s'] / 60:.1f} min, {stream['keyword_events']} keyword events"),
        ("thresholds", f"{chosen['reason']} (chosen on the validation voices' stream)"),
        ("keyword recall on the stream", f"{100 * overall['recall']:.1f}%"),
        ("false accepts per hour", f"{overall['false_accepts_per_hour']:.1f}"),
        ("mean detection latency from word onset", "-" if latency is None else f"{latency:.2f} s"),
        *wake_rows,
        ("sharing plan", f"{manifest['sharing']['scheme']} (depth {manifest['sharing']['depth']}, "
                         f"{manifest['sharing']['unique_blocks']} stored block(s))"),
        ("unique / effective parameters", f"{manifest['unique_parameters']:,} / {manifest['effective_parameters']:,}"),
        ("int8 .tflite bytes", f"{manifest['files']['model_int8.tflite']:,}"),
        ("int8 constant bytes", f"{manifest['weights']['int8_constant_bytes']:,}"),
        ("TFLite Micro arena bytes (measured + margin)", f"{manifest['arena_bytes']:,}"),
        ("ms per window: ai-edge-litert / TFLite Micro",
         f"{manifest['latency_ms']['ai_edge_litert']:.2f} / {manifest['latency_ms']['tflite_micro']:.1f}"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--stream", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("artifacts/summary.md"))
    args = parser.parse_args()
    table = rows(load(args.run / "eval_testing.json"), load(args.run / "eval_testing_noisy.json"),
                 load(args.export / "manifest.json"), load(args.stream / "report.json"))  # fmt: skip
    width = max(len(k) for k, _ in table)
    text = "\n".join(f"| {k:<{width}} | {v} |" for k, v in table)
    text = f"| {'kws-tiny, embedded default corpus':<{width}} | |\n|{'-' * (width + 2)}|---|\n{text}\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written: {args.out}; MCU bundle: {args.export / 'mcu'}; DET curve: {args.stream / 'det.png'}")


if __name__ == "__main__":
    main()
