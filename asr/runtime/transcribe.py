"""`asr transcribe EXPORT_DIR (FILE | - | --mic)`: speech to text with an exported CTC model, on the device.

FILE is a mono WAV/FLAC at the model's rate; `-` reads raw S16_LE mono PCM from stdin (`arecord -f S16_LE -r 16000
-c 1 | asr transcribe MODEL -`); `--mic` records. Audio is decoded over fixed windows with overlap as it arrives
(asr.runtime.ctc_stream); streams print the greedy units as they become final. The transcript is words: a beam
search over the export's lexicon scored by its word n-gram (asr.runtime.words); `--lexicon WORDS.txt` puts other
words in their place (no n-gram), `--units` prints the greedy units instead (an export without a lexicon gives
nothing else). `--grammar GRAMMAR.toml` decodes to the requests of a grammar, printed as JSON with intent and
slots (asr.runtime.intent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from asr.errors import InputError, MissingError
from asr.runtime.audio_source import microphone_chunks, stdin_chunks
from asr.runtime.ctc_stream import CTCModel, load_ctc
from asr.runtime.interpreter import BACKENDS
from asr.runtime.phrases import PhraseError, phrase_units
from asr.runtime.recognizer import Recognizer, decode
from asr.runtime.words import BEAM, WordDecoder

SILENCE_PEAK = 1e-4  # a recording whose samples all stay below this (about -80 dBFS) holds no speech


class GreedyStream:
    """Greedy CTC over frames arriving in pieces: a unit repeated across a boundary is merged as in one pass."""

    def __init__(self, blank: int):
        self.blank, self.prev, self.ids = blank, blank, []

    def push(self, log_probs: np.ndarray) -> list[int]:
        new = []
        for u in np.asarray(log_probs).argmax(-1).tolist():
            if u != self.prev and u != self.blank:
                new.append(u)
            self.prev = u
        self.ids += new
        return new


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="EXPORT_DIR", help="a CTC export directory (asr export of a CTC model)")
    parser.add_argument("audio", nargs="?", metavar="FILE", help="mono WAV/FLAC file, or - for raw S16_LE PCM on stdin")
    parser.add_argument("--mic", action="store_true", help="transcribe the microphone (Ctrl-C to stop)")
    parser.add_argument("--device", default=None, help="microphone: PortAudio device index or name")
    parser.add_argument("--resample", action="store_true", help="accept a FILE at another sample rate")
    parser.add_argument("--lexicon", type=Path, default=None, help="words allowed in the output, one per line")
    parser.add_argument("--units", action="store_true", help="print the greedy units (phones or pieces), not words")
    parser.add_argument(
        "--grammar",
        type=Path,
        default=None,
        help="a grammar TOML (the default recipe ships grammar.toml): print the request as JSON",
    )
    parser.add_argument("--beam", type=int, default=BEAM, help="beam width of word decoding")
    parser.add_argument("--json", action="store_true", help="print a JSON object (text, seconds, real-time factor)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default=None, help="TFLite interpreter to use")
    parser.add_argument("--precision", default="int8", help="which exported model to run (int8 or float32)")


def lexicon_decoder(model: CTCModel, path: Path, beam: int) -> WordDecoder:
    """A decoder whose output may only be the words of `path` (one or more a line), spelled as phrases are."""
    if not path.is_file():
        raise MissingError(f"{path}: no such lexicon file")
    words = sorted({w.lower() for line in path.read_text().splitlines() for w in line.split()})
    if not words:
        raise InputError(f"{path}: the lexicon has no words")
    try:
        return WordDecoder(model.units, {w: phrase_units(model, w) for w in words}, beam=beam)
    except PhraseError as e:
        raise InputError(f"{path}: {e}") from None


def word_decoder(model: CTCModel, args: argparse.Namespace) -> WordDecoder | None:
    """What turns frames into words: --lexicon's words, else the export's own; None for greedy units."""
    if args.units:
        return None
    if args.lexicon:
        return lexicon_decoder(model, args.lexicon, args.beam)
    return model.word_decoder(beam=args.beam)


def check_audio(audio: np.ndarray, name: str, model: CTCModel) -> None:
    """Refuse audio that cannot hold speech, naming the file: too short for one frame, or digital silence."""
    spec = model.spec
    if len(audio) < spec.n_fft:
        raise InputError(f"{name}: {len(audio)} samples is shorter than one {spec.n_fft}-sample analysis frame")
    peak = float(np.abs(audio).max())
    if peak < SILENCE_PEAK:
        raise InputError(f"{name}: silent (peak amplitude {peak:.1e}); nothing to transcribe")


def run(args: argparse.Namespace) -> int:
    if args.mic == (args.audio is not None):
        raise InputError("give exactly one audio source: FILE, - (stdin) or --mic")
    if args.grammar:
        return _intent(args)
    model = load_ctc(args.model_dir, precision=args.precision, backend=args.backend)
    words = word_decoder(model, args)
    started = time.perf_counter()
    if args.audio not in (None, "-"):
        from asr.audio import read_audio

        audio = read_audio(args.audio, model.spec.sample_rate, resample=args.resample)
        check_audio(audio, args.audio, model)
        text, seconds = decode(model, model.log_probs(audio), words), len(audio) / model.spec.sample_rate
    else:
        text, seconds = _stream(model, args, words)
    elapsed = time.perf_counter() - started
    if args.json:
        print(
            json.dumps(
                {"text": text, "audio_seconds": round(seconds, 3), "rtf": round(elapsed / max(seconds, 1e-9), 4)}
            )
        )
    else:
        print(text)
    return 0


def _stream(model: CTCModel, args: argparse.Namespace, words: WordDecoder | None) -> tuple[str, float]:
    """Transcribe stdin or the microphone as it arrives; partial greedy units go to stderr as they become final."""
    chunk = model.spec.sample_rate // 10
    if args.mic:
        device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
        chunks = microphone_chunks(model.spec.sample_rate, chunk, device)
        print("listening (Ctrl-C to stop)", file=sys.stderr)
    else:
        chunks = stdin_chunks(chunk)
    stream, state, frames = model.stream(), GreedyStream(model.blank), []
    try:
        for lp in stream.run(chunks):
            frames.append(lp)
            if state.push(lp):
                print(f"\r{model.decode(state.ids)}", end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        frames.append(stream.finish())
    if state.ids:
        print(file=sys.stderr)
    if stream.audio_seconds * model.spec.sample_rate < model.spec.n_fft:
        raise InputError("stdin: no audio received" if not args.mic else "microphone: no audio received")
    log_probs = np.concatenate(frames) if frames else np.zeros((0, model.blank + 1), np.float32)
    return decode(model, log_probs, words), stream.audio_seconds


def _intent(args: argparse.Namespace) -> int:
    """Decode FILE constrained to the grammar's requests and print {"text", "intent", "slots"} as JSON."""
    from asr.audio import read_audio

    if args.audio in (None, "-"):
        raise InputError("--grammar needs an audio FILE")
    recognizer = Recognizer(args.model_dir, args.grammar, precision=args.precision, backend=args.backend)
    audio = read_audio(args.audio, recognizer.model.spec.sample_rate, resample=args.resample)
    check_audio(audio, args.audio, recognizer.model)
    request = recognizer.request(audio)
    print(json.dumps(request.to_dict() if request else {"text": "", "intent": None, "slots": {}}))
    return 0
