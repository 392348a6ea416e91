"""Wake words and commands defined by text: a CTC keyword score over the stream, a threshold per phrase.

Set-up (`asr demo EXPORT_DIR --keyword "hey marvin"`) turns each phrase into the model's units once and stores them
in EXPORT_DIR/keywords.json, so the device only reads them: the export's lexicon where it has every word
(asr.export.words), else sentencepiece pieces for a text model (from the piece list in the manifest), espeak-ng
phones for a phone model (on the PC, where espeak-ng is installed). The stream is
decoded over overlapping windows (asr.runtime.ctc_stream); every new stretch of frames, each phrase gets the score
of its best placement in the last few seconds (asr.runtime.ctc.keyword_score) and fires at its threshold.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.files import write_text_atomic
from asr.runtime.ctc import CTCError, keyword_score
from asr.runtime.ctc_stream import CTCModel
from asr.runtime.detector import Detection

KEYWORDS_FILE = "keywords.json"
DEFAULT_PHRASE_THRESHOLD = -0.5  # mean log-probability per frame below the free best path (0 = a perfect match)


class PhraseError(InputError):
    """A phrase the model cannot spot; the message says what the model (or espeak-ng) made of it."""


def phrase_key(phrase: str) -> str:
    """How a phrase is stored and looked up: lower case, single spaces."""
    return " ".join(phrase.lower().split())


@functools.cache
def espeak_phones(word: str) -> str:
    """espeak-ng's US English phoneme mnemonics for one word (asr.text.fold makes them the phone set's names)."""
    from asr.text import espeak  # PC side: set-up only

    try:
        return espeak([word])[0]
    except FileNotFoundError:
        raise PhraseError(
            f"phrase word {word!r}: a phone model needs espeak-ng to set a new phrase up (apt-get install espeak-ng); "
            f"or set it up once where espeak-ng is and copy the export's {KEYWORDS_FILE} with it"
        ) from None


def phrase_units(model: CTCModel, phrase: str) -> list[int]:
    """The unit ids of `phrase` for this model; PhraseError naming the word the model cannot say."""
    words = re.findall(r"[a-z']+", phrase.lower())
    if not words or len("".join(words)) < 2:
        raise PhraseError(f"phrase {phrase!r}: needs at least one word of two letters or more")
    if all(w in model.lexicon for w in words):  # the export's own lexicon: no espeak-ng needed on the device
        return [u for w in words for u in model.lexicon[w]]
    units: list[int] = []
    if model.pieces is not None:
        for word in words:
            try:
                units += model.pieces.encode_word(word)
            except CTCError as e:
                raise PhraseError(f"phrase {phrase!r}: {e}") from None
        return units
    from asr.text import PHONES, fold  # the phone set the phone model was trained on (PC side: set-up only)

    for word in words:
        said = espeak_phones(word)
        phones = fold(said)
        unknown = [p for p in phones if p not in PHONES]
        if unknown or not phones:
            raise PhraseError(
                f"phrase {phrase!r}: espeak-ng made {word!r} into [{said}], whose phones {unknown} are not in the "
                "model's phone set; respell the word as it sounds"
            )
        units += [model.units.index(p) for p in phones]
    return units


def setup_phrases(export_dir: str | Path, model: CTCModel, phrases: Iterable[str]) -> dict:
    """Units of each phrase, from EXPORT_DIR/keywords.json where set up before, else computed and stored there."""
    path = Path(export_dir) / KEYWORDS_FILE
    stored = json.loads(path.read_text()) if path.is_file() else {}
    out, new = {}, False
    for phrase in phrases:
        key = phrase_key(phrase)
        if key not in stored:
            units, new = phrase_units(model, key), True
            stored[key] = {"units": units, "unit_names": [model.units[u] for u in units]}
        out[key] = stored[key]
    if new:
        write_text_atomic(path, json.dumps(stored, indent=1) + "\n")
    return out


class PhraseSpotter:
    """Feed audio with `push(chunk)`; get the phrase detections that chunk completes.

    A phrase fires when its score reaches its threshold at a placement that starts after its previous detection
    ended and at least `refractory_s` after it, so one utterance fires once however many windows see it."""

    def __init__(
        self,
        model: CTCModel,
        phrases: dict[str, list[int]],
        thresholds: dict[str, float],
        span_s: float = 2.5,
        refractory_s: float = 1.0,
    ):
        self.model, self.phrases, self.thresholds = model, phrases, thresholds
        self.stream = model.stream()
        self.frame_s = model.plan.stride * model.spec.hop_length / model.spec.sample_rate
        self.span = max(1, round(span_s / self.frame_s))
        self._frames = np.zeros((0, model.blank + 1), dtype=np.float32)  # the last `span` frames
        self._first = 0  # global index of _frames[0]
        self._after = {p: -1 for p in phrases}  # a new detection must start after this frame
        self.refractory = round(refractory_s / self.frame_s)

    def scores(self, frames: np.ndarray) -> list[tuple[str, float, int, int]]:
        """(phrase, score, global start, global end) of each phrase on the buffer after adding `frames`."""
        self._frames = np.concatenate([self._frames, frames])
        drop = max(0, len(self._frames) - self.span)
        self._frames, self._first = self._frames[drop:], self._first + drop
        if not len(frames):
            return []
        out = []
        for phrase, units in self.phrases.items():
            lo = max(0, self._after[phrase] + 1 - self._first)
            if len(self._frames) - lo < len(units):
                continue
            score, start, end = keyword_score(self._frames[lo:], units, self.model.blank)
            out.append((phrase, score, self._first + lo + start, self._first + lo + end))
        return out

    def _detect(self, frames: np.ndarray) -> list[Detection]:
        found = []
        for phrase, score, _start, end in self.scores(frames):
            if score >= self.thresholds[phrase] and end - self._after[phrase] >= self.refractory:
                self._after[phrase] = end
                # A late emission in the last window's silence padding is heard when the audio ends, not after.
                found.append(Detection(min(end * self.frame_s, self.stream.audio_seconds), phrase, score))
        return found

    def push(self, samples: np.ndarray) -> list[Detection]:
        return self._detect(self.stream.push(samples))

    def run(self, chunks: Iterable[np.ndarray]) -> Iterator[Detection]:
        for chunk in chunks:
            yield from self.push(chunk)
        yield from self._detect(self.stream.finish())


def is_ctc_export(export_dir: str | Path) -> bool:
    from asr.runtime.bundle import Manifest

    return Manifest.read(export_dir).ctc is not None


def run_demo(args) -> int:
    """`asr demo EXPORT_DIR --keyword PHRASE ...` on a CTC export: one line per detection (as for keywords)."""
    import sys

    if not args.keyword:
        raise InputError(f"{args.model_dir}: a CTC export spots phrases defined by text: give --keyword PHRASE")

    from asr.runtime.audio_source import demo_chunks
    from asr.runtime.ctc_stream import load_ctc
    from asr.runtime.response import respond

    model = load_ctc(args.model_dir, precision=args.precision, backend=args.backend)
    phrases = setup_phrases(args.model_dir, model, args.keyword)
    for phrase, entry in phrases.items():
        print(f"{phrase}: {' '.join(entry['unit_names'])}", file=sys.stderr)
    default = args.threshold if args.threshold is not None else DEFAULT_PHRASE_THRESHOLD
    thresholds = {p: default for p in phrases} | {phrase_key(k): v for k, v in args.label_threshold}
    spotter = PhraseSpotter(model, {p: e["units"] for p, e in phrases.items()}, thresholds)
    chunks = demo_chunks(args, model.spec.sample_rate, list(phrases))
    wake_word = phrase_key(args.wake_word) if args.wake_word else None
    return respond(spotter.run(chunks), args, list(phrases), lambda: spotter.stream.audio_seconds, wake_word)
