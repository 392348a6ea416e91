"""Words out of a CTC model on the device: a beam search over a lexicon, scored by a word n-gram.

A phone model's free reading is phones; this turns its log-probabilities into words, each word spelled in the
model's units by the export's lexicon (EXPORT_DIR/lexicon.txt, written by asr.export.words) and each word sequence
scored by the export's n-gram (EXPORT_DIR/words.arpa). The search is flashlight-text's LexiconDecoder with its
KenLM, the engine under torchaudio's `ctc_decoder`, without torch. The model has no word-boundary unit (words
follow each other through the blank), so the blank is also the search's silence. One consequence: flashlight
holds a finished word only through silence frames, so a word's last unit held over several frames costs the
blank's probability there. CTC's outputs are peaky (a unit on one frame, blanks around it), so this rarely bites.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from asr.errors import InputError, MissingError

LEXICON_FILE = "lexicon.txt"  # one word a line: the word, a tab, its units separated by spaces
LM_FILE = "words.arpa"
# Chosen on dev-clean of the default sentences corpus, 2 seeds of asr-tiny-phones (BENCHMARKS.md section 8).
LM_WEIGHT = 2.0
WORD_SCORE = 1.0  # dev-clean read the same at 0-2: the middle
BEAM = 500  # test-clean WER stops falling here (1,000: 0.1-0.2 points for 1.6x the time; BENCHMARKS.md section 8)
UNK = "<unk>"  # never spelled: unk_score is -inf, so no hypothesis holds it
BEAM_THRESHOLD = 25.0  # hypotheses further than this (nats) below the best are dropped


def read_lexicon(path: Path, units: Sequence[str]) -> dict[str, list[int]]:
    """{word: unit ids} of a lexicon file; InputError naming the file and line of a unit the model lacks."""
    index = {u: i for i, u in enumerate(units)}
    lexicon = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        word, _, spelling = line.partition("\t")
        if not word.strip():
            continue
        try:
            lexicon[word.strip()] = [index[u] for u in spelling.split()]
        except KeyError as e:
            raise InputError(f"{path}:{n}: {word!r} is spelled with {e.args[0]!r}, not a unit of this model") from None
    return lexicon


class WordDecoder:
    """log-probabilities [frames, units + 1] -> the most likely word sequence.

    Args:
        units: the model's unit names, without the blank (the blank is the next index).
        lexicon: each word's unit ids.
        lm: an ARPA (or KenLM binary) word n-gram over the lexicon's words; None scores every word alike.
    """

    def __init__(
        self,
        units: Sequence[str],
        lexicon: dict[str, list[int]],
        lm: Path | None = None,
        *,
        lm_weight: float = LM_WEIGHT,
        word_score: float = WORD_SCORE,
        beam: int = BEAM,
    ):
        try:
            from flashlight.lib.text import decoder as fl
            from flashlight.lib.text.dictionary import create_word_dict
        except ImportError:
            raise MissingError("word decoding needs flashlight-text (pip install flashlight-text)") from None
        lexicon = {w: u for w, u in lexicon.items() if u}
        if not lexicon:
            raise InputError("the lexicon has no word the model can spell")
        self.words = sorted(lexicon)
        self.blank = len(units)
        word_dict = create_word_dict({w: [[w]] for w in [*self.words, UNK]})
        if lm is None:
            self.lm = fl.ZeroLM()
        else:
            if not Path(lm).is_file():
                raise MissingError(f"{lm}: no such language model file")
            from flashlight.lib.text.decoder.kenlm import KenLM

            try:
                with _quiet_stderr():  # KenLM reports its loading progress on stderr
                    self.lm = KenLM(str(lm), word_dict)
            except RuntimeError as e:  # KenLM's message names its own source line first, then the problem
                raise InputError(f"{lm}: not a language model KenLM reads ({str(e).splitlines()[-1]})") from None
        trie = fl.Trie(self.blank + 1, self.blank)
        start = self.lm.start(False)
        for word in self.words:
            index = word_dict.get_index(word)
            trie.insert(lexicon[word], index, self.lm.score(start, index)[1])
        trie.smear(fl.SmearingMode.MAX)
        options = fl.LexiconDecoderOptions(
            beam_size=beam,
            beam_size_token=self.blank + 1,
            beam_threshold=BEAM_THRESHOLD,
            lm_weight=lm_weight if lm is not None else 0.0,
            word_score=word_score,
            unk_score=-math.inf,
            sil_score=0.0,
            log_add=False,
            criterion_type=fl.CriterionType.CTC,
        )
        self.word_dict = word_dict
        unk = word_dict.get_index(UNK)
        self.decoder = fl.LexiconDecoder(options, trie, self.lm, self.blank, self.blank, unk, [], False)

    def decode(self, log_probs: np.ndarray) -> str:
        lp = np.ascontiguousarray(log_probs, dtype=np.float32)
        if lp.ndim != 2 or lp.shape[1] != self.blank + 1:
            raise InputError(f"log-probabilities of shape {lp.shape}; the lexicon's model has {self.blank + 1} outputs")
        if not len(lp):
            return ""
        best = self.decoder.decode(lp.ctypes.data, lp.shape[0], lp.shape[1])[0]
        return " ".join(self.word_dict.get_entry(w) for w in best.words if w >= 0)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
