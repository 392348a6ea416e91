"""Speech to words, or to a grammar's request, with a CTC export, inside an app:

    from asr import Recognizer
    recognizer = Recognizer("artifacts/asr-tiny-phones", grammar="asr/data/default_recipe/grammar.toml")
    recognizer.transcribe(audio), recognizer.request(audio)      # audio: float32 mono at the model's rate

Words come from the export's lexicon and n-gram (asr.runtime.words); an export written without them gives its
greedy units. Requests are scored whole against every request of the grammar (asr.runtime.intent).
"""

from __future__ import annotations

from functools import cached_property, partial
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.runtime.ctc import greedy
from asr.runtime.ctc_stream import CTCModel, load_ctc
from asr.runtime.intent import IntentDecoder, Request, load_grammar
from asr.runtime.phrases import phrase_units
from asr.runtime.words import WordDecoder


def decode(model: CTCModel, log_probs: np.ndarray, words: WordDecoder | None) -> str:
    """Words from `words`, else the greedy units."""
    return words.decode(log_probs) if words is not None else model.decode(greedy(log_probs, model.blank))


class Recognizer:
    """Args:
    export_dir: an `asr export` of a CTC model.
    grammar: a grammar TOML (or one read by asr.runtime.intent.load_grammar) whose requests `request` chooses
        from (the default recipe ships grammar.toml).
    precision, backend: which exported model runs, on which TFLite interpreter.
    """

    def __init__(
        self,
        export_dir: str | Path,
        grammar: str | Path | dict | None = None,
        *,
        precision: str = "int8",
        backend: str | None = None,
    ):
        self.model = load_ctc(export_dir, precision=precision, backend=backend)
        if grammar is not None and not isinstance(grammar, dict):
            grammar = load_grammar(grammar)
        self.grammar = (
            IntentDecoder(grammar, partial(phrase_units, self.model), self.model.blank) if grammar is not None else None
        )

    @cached_property
    def words(self) -> WordDecoder | None:
        """The export's word decoder, loaded on first use (`request` never needs its n-gram)."""
        return self.model.word_decoder()

    def transcribe(self, audio: np.ndarray) -> str:
        return decode(self.model, self.model.log_probs(audio), self.words)

    def request(self, audio: np.ndarray) -> Request | None:
        """The grammar's most likely request (text, intent, slots); None for audio too short for one frame."""
        if self.grammar is None:
            raise InputError("Recognizer(EXPORT_DIR, grammar=GRAMMAR.toml) decodes requests: no grammar was given")
        return self.grammar.decode(self.model.log_probs(audio))
