"""`asr summary`: the main job's closing table, what a user of `make demo` wants to know, from the reports the
steps wrote: EXPORT/eval-testing.json and eval-testing-noisy.json (`asr eval --tflite EXPORT`: the int8 model in
TFLite Micro), EXPORT/manifest.json (`asr export`) and STREAM/report.json (`asr eval-stream`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asr.errors import MissingError
from asr.files import write_text_atomic
from asr.runtime.bundle import Manifest


def load(path: Path) -> dict:
    if not path.is_file():
        raise MissingError(f"{path} is missing: run `make demo` (the step that writes it failed or was skipped)")
    return json.loads(path.read_text())


def held_out_donors() -> list[str]:
    """The recorded people of the default recipe's test split (kal and slt)."""
    from asr.data.recipe import load_recipe

    raw = load_recipe().raw
    return sorted({raw["donors"].get(voice, voice.split("+")[0]) for voice in raw["splits"]["testing"]})


def group(report: dict, kind: str, names: list[str]) -> float | None:
    """Accuracy over the speech clips of the named groups (donors, engines) of an `asr eval` report."""
    rows = [(report.get("groups") or {}).get(kind, {}).get(name) for name in names]
    rows = [r for r in rows if r and r["examples"]]
    total = sum(r["examples"] for r in rows)
    return sum(r["accuracy"] * r["examples"] for r in rows) / total if total else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def rows(evaluation: dict, noisy: dict, manifest: Manifest, stream: dict) -> list[tuple[str, str]]:
    report = manifest.report
    chosen = stream["chosen"]
    overall = chosen["overall"]
    latency = overall["latency_mean_s"]
    own = manifest.thresholds.label_thresholds if manifest.thresholds else {}  # chosen on the validation voices
    donors = held_out_donors()
    wake_rows = [
        (f"wake word {word!r} at its own threshold {threshold:.2f}",
         f"recall {100 * chosen['per_label'][word]['recall']:.1f}%, "
         f"{chosen['per_label'][word]['false_accepts_per_hour']:.1f} false wakes per hour")
        for word, threshold in own.items()
    ]  # fmt: skip
    return [
        ("test clips (voices never heard in training)", f"{evaluation['examples']}"),
        ("accuracy, int8 in TFLite Micro", f"{100 * evaluation['accuracy']:.2f}%"),
        ("accuracy, int8 in TFLite Micro, noise at 5-20 dB SNR", f"{100 * noisy['accuracy']:.2f}%"),
        *[
            (f"  speech clips of {who}, clean / noisy", f"{_pct(clean_g)} / {_pct(noisy_g)}")
            for who, clean_g, noisy_g in (
                (f"the held-out donors {' and '.join(donors)}", group(evaluation, "donor", donors),
                 group(noisy, "donor", donors)),
                ("the held-out Kokoro voices", group(evaluation, "engine", ["kokoro"]),
                 group(noisy, "engine", ["kokoro"])),
            )
        ],
        ("keyword-only accuracy (mean keyword recall)", f"{100 * evaluation['keyword_accuracy']:.1f}%"),
        ("words never heard in training called a keyword",
         f"{100 * evaluation['false_keyword']['unseen_words']['rate']:.1f}%"),
        ("silence called a keyword", f"{100 * evaluation['false_keyword']['silence']['rate']:.1f}%"),
        ("stream", f"{stream['duration_s'] / 60:.1f} min, {stream['keyword_events']} keyword events"),
        ("thresholds", f"{chosen['reason']} (chosen on the validation voices' stream)"),
        ("keyword recall on the stream", f"{100 * overall['recall']:.1f}%"),
        ("false accepts per hour", f"{overall['false_accepts_per_hour']:.1f}"),
        ("mean detection latency from word onset", "-" if latency is None else f"{latency:.2f} s"),
        *wake_rows,
        ("sharing plan", f"{report['sharing']['scheme']} (depth {report['sharing']['depth']}, "
                         f"{report['sharing']['unique_blocks']} stored block(s))"),
        ("unique / effective parameters", f"{report['unique_parameters']:,} / {report['effective_parameters']:,}"),
        ("int8 .tflite bytes", f"{report['files']['model_int8.tflite']:,}"),
        ("int8 constant bytes", f"{report['weights']['int8_constant_bytes']:,}"),
        *([("MCU bundle's model array bytes (one zero point per weight)", f"{report['mcu_model']['bytes']:,}")]
          if "mcu_model" in report else []),
        ("TFLite Micro arena bytes (measured + margin)", f"{manifest.arena_bytes:,}"),
        ("ms per window: ai-edge-litert / TFLite Micro",
         f"{report['latency_ms']['ai_edge_litert']:.2f} / {report['latency_ms']['tflite_micro']:.1f}"),
    ]  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export", type=Path, help="export directory, with the eval --tflite reports")
    parser.add_argument("stream", type=Path, help="folder of the test stream's eval-stream report.json")
    parser.add_argument("--out", type=Path, default=Path("artifacts/summary.md"))


def run(args: argparse.Namespace) -> int:
    clean, noisy = (load(args.export / f"eval-testing{c}.json") for c in ("", "-noisy"))
    table = rows(clean, noisy, Manifest.read(args.export), load(args.stream / "report.json"))
    width = max(len(k) for k, _ in table)
    text = "\n".join(f"| {k:<{width}} | {v} |" for k, v in table)
    text = f"| {'kws-tiny, embedded default corpus':<{width}} | |\n|{'-' * (width + 2)}|---|\n{text}\n"
    print(text)
    write_text_atomic(args.out, text)
    print(f"written: {args.out}; MCU bundle: {args.export / 'mcu'}; DET curve: {args.stream / 'det.png'}")
    return 0
