"""What a CTC export needs to write words: a lexicon (each word in the model's units) and a word n-gram in ARPA.

`asr export` writes both beside the model from the training split's transcripts and the recipe's grammar, so
`asr transcribe` on the device reads words, not units, with no espeak-ng or tokenizer there
(asr.runtime.words). The lexicon holds every word of the training transcripts and of the grammar (held-out
templates included: they are requests a user may make); the n-gram learns from the training transcripts only.

Why our own estimator: KenLM's `lmplz` is the usual one, but no wheel on PyPI ships it (kenlm and kenlm-ex build
the query side only) and Debian main has no package of it; a bigram or trigram over a few thousand sentences is a
few dozen lines. The model is interpolated absolute discounting, written in ARPA's backoff form (the
interpolated probability of every seen n-gram, the interpolation weight as its context's backoff), which KenLM,
and so flashlight-text on the device, read as is.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from asr.files import write_text_atomic
from asr.runtime.words import LEXICON_FILE, LM_FILE

DISCOUNT = 0.7  # absolute discount per seen n-gram (Ney et al.'s estimate for small corpora is 0.5-0.8)
ORDER = 2  # a trigram read dev-clean one word better per seed, at 2.7 times the bytes (BENCHMARKS.md section 8)
BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def arpa(
    sentences: Iterable[list[str]], vocabulary: Iterable[str], order: int = ORDER, discount: float = DISCOUNT
) -> str:
    """An ARPA n-gram of `sentences` (lists of words) whose unigrams cover `vocabulary` (+ </s> and <unk>)."""
    if order < 1 or not 0 < discount < 1:
        raise ValueError(f"order {order} must be >= 1 and discount {discount} in (0, 1)")
    follows: dict[tuple, Counter] = defaultdict(Counter)  # context (up to order-1 words) -> next word counts
    for words in sentences:
        seq = [BOS, *words, EOS]
        for i in range(1, len(seq)):
            for n in range(order):
                if i - n >= 0:
                    follows[tuple(seq[i - n : i])][seq[i]] += 1
    if () not in follows:
        raise ValueError("no sentences to learn from")
    vocab = sorted(set(vocabulary) | set(follows[()]) | {EOS, UNK})
    totals = {context: sum(counts.values()) for context, counts in follows.items()}

    def prob(context: tuple, word: str) -> float:
        """Interpolated: the discounted count, plus the discounted mass times the shorter context's probability."""
        counts = follows.get(context)
        lower = 1 / len(vocab) if not context else prob(context[1:], word)
        if not counts:
            return lower
        return (max(counts[word] - discount, 0) + discount * len(counts) * lower) / totals[context]

    def backoff(context: tuple) -> float | None:
        counts = follows.get(context)
        return math.log10(discount * len(counts) / totals[context]) if counts else None

    grams: list[list[str]] = [[] for _ in range(order)]
    for word in vocab:  # unigrams: every word of the vocabulary, and <s> as a context only
        grams[0].append(_line(math.log10(prob((), word)), (word,), backoff((word,)) if order > 1 else None))
    grams[0].append(_line(-99.0, (BOS,), backoff((BOS,)) if order > 1 else None))
    for n in range(1, order):
        for context, counts in sorted(follows.items()):
            if len(context) == n:
                for word in sorted(counts):
                    gram = (*context, word)
                    bow = backoff(gram) if n + 1 < order and word != EOS else None
                    grams[n].append(_line(math.log10(prob(context, word)), gram, bow))
    head = ["", "\\data\\"] + [f"ngram {n + 1}={len(lines)}" for n, lines in enumerate(grams)]
    body = [part for n, lines in enumerate(grams) for part in ("", f"\\{n + 1}-grams:", *lines)]
    return "\n".join([*head, *body, "", "\\end\\", ""])


def _line(logp: float, gram: tuple, bow: float | None) -> str:
    return f"{logp:.4f}\t{' '.join(gram)}" + (f"\t{bow:.4f}" if bow is not None else "")


def write_word_files(
    out_dir: Path, transcripts: Iterable[str], grammar_words: Iterable[str], spell: Callable[[list[str]], dict]
) -> dict:
    """Write LEXICON_FILE and LM_FILE into `out_dir`; `spell(words)` gives each word's unit names (a word it
    cannot spell is left out). Returns what was written, for the manifest's report."""
    sentences = [t.lower().split() for t in transcripts if t.split()]
    words = sorted({w for s in sentences for w in s} | {w.lower() for w in grammar_words})
    spelled = {w: units for w, units in spell(words).items() if units}
    lexicon = "".join(f"{w}\t{' '.join(units)}\n" for w, units in sorted(spelled.items()))
    write_text_atomic(out_dir / LEXICON_FILE, lexicon)
    write_text_atomic(out_dir / LM_FILE, arpa(sentences, spelled))
    return {"lexicon_words": len(spelled), "lm_sentences": len(sentences), "lm_order": ORDER}
