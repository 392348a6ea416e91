"""Speech to intent on the device: decoding constrained to the requests of a grammar (the default: grammar.toml).

Every request the grammar can make (each template with each slot filler and spoken number) is written in the model's
units (pieces, or espeak-ng phones for a phone model: asr.runtime.phrases.phrase_units, as a wake phrase is) and scored
by its CTC probability (asr.runtime.ctc.sequences_log_likelihood); the best one is the output, so
it is always a request the grammar knows, and its template and slot values come with it. The intent is the
template; the slots are its {name} values (numbers as integers).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.files import read_toml
from asr.numbers import spoken_number
from asr.runtime.ctc import sequences_log_likelihood

SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Request:
    text: str
    intent: str  # the template
    slots: dict

    def to_dict(self) -> dict:
        return {"text": self.text, "intent": self.intent, "slots": self.slots}


def load_grammar(path: str | Path) -> dict:
    grammar = read_toml(path, "grammar file")
    if not grammar.get("templates"):
        raise InputError(f"{path}: the grammar has no [[templates]]")
    return grammar


def requests(grammar: dict) -> list[Request]:
    """Every request of every template (held-out ones included: they are requests a user may make)."""
    out = []
    for template in (t["text"] for t in grammar["templates"]):
        names = SLOT.findall(template)
        options = []
        for name in names:
            if name in grammar.get("numbers", {}):
                lo, hi = grammar["numbers"][name]
                options.append([(n, spoken_number(n)) for n in range(lo, hi + 1)])
            elif name in grammar.get("slots", {}):
                options.append([(v, v) for v in grammar["slots"][name]])
            else:
                raise InputError(f"grammar template {template!r}: unknown slot {{{name}}}")
        for combo in itertools.product(*options):
            spoken = iter(said for _, said in combo)
            text = SLOT.sub(lambda _m, spoken=spoken: next(spoken), template)
            out.append(Request(text, template, {n: v for n, (v, _) in zip(names, combo, strict=True)}))
    return out


class IntentDecoder:
    """log-probabilities of an utterance -> the grammar's most likely request.

    Every request is scored exactly (its CTC probability over all alignments) rather than by a pruned beam: a beam
    over the request trie lost most intents once one piece was misheard (6% against 67% of a trained model's
    requests, BENCHMARKS.md section 8), and a smart-speaker grammar is small enough to score whole."""

    def __init__(self, grammar: dict, encode: Callable[[str], list[int]], blank: int):
        self.requests = requests(grammar)
        try:
            self.sequences = [encode(r.text) for r in self.requests]
        except InputError as e:
            raise InputError(f"the grammar uses a word the model cannot write: {e}") from None
        self.blank = blank

    def decode(self, log_probs: np.ndarray) -> Request | None:
        if not len(log_probs):
            return None
        return self.requests[int(np.argmax(sequences_log_likelihood(log_probs, self.sequences, self.blank)))]
