"""Scoring sentence recognizers alike: text normalisation for WER, and transcript -> intent on the grammar.

Normalisation (every system's output and every reference): lower case; digits spelled as the corpus speaks them
(asr.numbers, "20-minute" -> "twenty minute", "7:00" -> "seven o'clock", "%" -> "percent"); punctuation dropped
except an apostrophe inside a word ("o'clock"). The corpus's own transcripts are unchanged by it.

Intent from a free transcript: the grammar request (asr.runtime.intent.requests, all 4,647 of the default grammar)
whose normalised text equals it, else the one nearest to it in characters (edit distance, so "eggs" is near a
misheard "egg"; ties: the first in the grammar's order). A request carries its template (the intent) and slot
values, so a transcript counts as right when both match the reference's request exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from asr.numbers import spoken_number
from asr.runtime.intent import Request, requests

_CLOCK = re.compile(r"\b(\d{1,2}):00\b")
_NUMBER = re.compile(r"\d+")
_DROP = re.compile(r"[^a-z' ]+")  # after the rules below: anything but letters, apostrophes and spaces
_STRAY_APOSTROPHE = re.compile(r"(?<![a-z])'|'(?![a-z])")


def _spell(match: re.Match) -> str:
    n = int(match.group())
    return f" {spoken_number(n)} " if n < 1000 else f" {match.group()} "  # larger numbers never occur in the corpus


def normalise(text: str) -> str:
    """`text` as the corpus writes its references (lower case, words only, numbers in words)."""
    text = _CLOCK.sub(r"\1 o'clock", text.lower())
    text = text.replace("%", " percent ").replace("°", " degrees ").replace("-", " ")
    text = _NUMBER.sub(_spell, text)
    text = _STRAY_APOSTROPHE.sub(" ", _DROP.sub(" ", text))
    return " ".join(text.split())


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    path: str
    reference: str  # normalised
    heldout: bool  # from a held-out template of the grammar (scored for intent)


class IntentMatcher:
    """Normalised text -> the grammar's request: exact, else nearest in characters."""

    def __init__(self, grammar: dict):
        self.requests = requests(grammar)
        self.heldout = {t["text"] for t in grammar["templates"] if t.get("heldout", False)}
        self._exact = {r.text: r for r in reversed(self.requests)}  # reversed: the first of equal texts wins
        self._texts = [r.text for r in self.requests]

    def exact(self, text: str) -> Request | None:
        return self._exact.get(normalise(text))

    def nearest(self, text: str) -> Request | None:
        """The request nearest to `text` (normalised first) in characters (edit distance); None for no words."""
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein  # jiwer's own dependency

        text = normalise(text)
        if not text or text in self._exact:
            return self._exact.get(text)
        _, _, index = process.extractOne(text, self._texts, scorer=Levenshtein.distance)
        return self.requests[index]

    def is_heldout(self, request: Request | None) -> bool:
        return request is not None and request.intent in self.heldout


def load_utterances(
    root: str | Path, split: str, matcher: IntentMatcher, per_speaker: int | None = None
) -> list[Utterance]:
    """The split's utterances sorted by id (the first `per_speaker` of each speaker, if given), each marked held-out
    when its reference is a request of a held-out template."""
    from asr.data.librispeech import LibriSpeech

    taken: dict[str, int] = {}
    out = []
    for path, text, utt_id in LibriSpeech(root, split).items:
        speaker = LibriSpeech.speaker_of(utt_id)
        taken[speaker] = taken.get(speaker, 0) + 1
        if per_speaker is None or taken[speaker] <= per_speaker:
            out.append(Utterance(utt_id, str(path), normalise(text), matcher.is_heldout(matcher.exact(text))))
    return out


def same_request(a: Request | None, b: Request | None) -> bool:
    """Exact intent (template) and slots."""
    return a is not None and b is not None and (a.intent, a.slots) == (b.intent, b.slots)


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Word error rate of normalised texts (jiwer; an empty hypothesis counts every reference word deleted)."""
    import jiwer

    return float(jiwer.wer([normalise(r) for r in references], [normalise(h) or "<empty>" for h in hypotheses]))
