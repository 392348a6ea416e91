"""CTC decoding on the device (numpy only): greedy, lexicon-constrained beam search, and keyword scores.

The exported CTC model gives per-frame log-probabilities [T, units + 1] with the blank last. Units are
sentencepiece pieces (text models) or espeak-ng phones; both are stored as a plain list in the manifest, so the
device needs neither torch nor sentencepiece.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from asr.errors import InputError

WORD_START = "\u2581"  # sentencepiece's word-boundary mark ("▁")


class CTCError(InputError):
    """Bad decoder input: an empty vocabulary, an out-of-vocabulary word, log-probabilities of the wrong width."""


def greedy(log_probs: np.ndarray, blank: int) -> list[int]:
    """Best unit per frame, repeats merged, blanks dropped."""
    best = np.asarray(log_probs).argmax(-1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(u) for u in best[keep] if u != blank]


class Pieces:
    """Sentencepiece pieces as text: decode ids, and split a word into pieces as sentencepiece's unigram model does.

    Why not sentencepiece itself: the device side has only numpy and an interpreter. Decoding is joining pieces;
    encoding one word is a Viterbi over the stored piece scores (the unigram model's own rule)."""

    def __init__(self, pieces: Sequence[str], scores: Sequence[float] | None = None):
        if not pieces:
            raise CTCError("the tokenizer has no pieces")
        self.pieces = list(pieces)
        self.scores = list(scores) if scores is not None else [0.0] * len(self.pieces)
        self.index = {p: i for i, p in enumerate(self.pieces)}
        self.longest = max(len(p) for p in self.pieces)
        self.upper_case = not any(c.islower() for p in self.pieces if not p.startswith("<") for c in p)

    def encode_text(self, text: str) -> list[int]:
        return [i for word in text.split() for i in self.encode_word(word)]

    def decode(self, ids: Iterable[int]) -> str:
        text = "".join(self.pieces[i] for i in ids if 0 <= i < len(self.pieces) and not self.pieces[i].startswith("<"))
        return " ".join(text.replace(WORD_START, " ").split())

    def encode_word(self, word: str) -> list[int]:
        """Piece ids of one word (as it starts a word); CTCError when the pieces cannot spell it. A model whose
        pieces are all upper case (LibriSpeech transcripts) gets the word in upper case."""
        if self.upper_case:
            word = word.upper()
        text = WORD_START + word
        best = [(0.0, -1)] + [(-np.inf, -1)] * len(text)  # (score, start of the last piece) per prefix length
        for end in range(1, len(text) + 1):
            for start in range(max(0, end - self.longest), end):
                i = self.index.get(text[start:end])
                if i is not None and best[start][0] + self.scores[i] > best[end][0]:
                    best[end] = (best[start][0] + self.scores[i], start)
        if best[-1][0] == -np.inf:
            raise CTCError(f"the model's pieces cannot spell {word!r}")
        ids, end = [], len(text)
        while end > 0:
            start = best[end][1]
            ids.append(self.index[text[start:end]])
            end = start
        return ids[::-1]


def sequence_log_likelihood(log_probs: np.ndarray, units: Sequence[int], blank: int) -> float:
    """log P(units | frames) summed over all CTC alignments (the forward algorithm)."""
    return float(sequences_log_likelihood(log_probs, [units], blank)[0])


def sequences_log_likelihood(log_probs: np.ndarray, sequences: Sequence[Sequence[int]], blank: int) -> np.ndarray:
    """log P(sequence | frames) of each sequence, summed over all CTC alignments: the forward algorithm, vectorised
    over the sequences and their states (blank, unit, blank, ..., unit, blank; shorter ones padded)."""
    lp = np.asarray(log_probs, dtype=np.float64)
    if not len(lp):
        raise CTCError("no frames to score")
    longest = max(len(units) for units in sequences)
    n = 2 * longest + 1
    states = np.full((len(sequences), n), blank)
    for i, units in enumerate(sequences):
        states[i, 1 : 2 * len(units) : 2] = units
    ends = np.array([2 * len(units) for units in sequences])
    valid = np.arange(n)[None] <= ends[:, None]
    # A unit may skip the blank before it unless it repeats the unit before that.
    skip = np.zeros_like(valid)
    skip[:, 3::2] = states[:, 3::2] != states[:, 1:-2:2]
    none = np.full((len(sequences), 2), -np.inf)
    alpha = np.where(np.arange(n)[None] < 2, lp[0, states], -np.inf)
    alpha[~valid] = -np.inf
    for t in range(1, len(lp)):
        prev1 = np.concatenate([none[:, :1], alpha[:, :-1]], 1)
        prev2 = np.where(skip, np.concatenate([none, alpha[:, :-2]], 1), -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, prev1), prev2) + lp[t, states]
        alpha[~valid] = -np.inf
    rows = np.arange(len(sequences))
    return np.logaddexp(alpha[rows, ends], np.where(ends > 0, alpha[rows, ends - 1], -np.inf))


def keyword_score(log_probs: np.ndarray, units: Sequence[int], blank: int) -> tuple[float, int, int]:
    """(score, first frame, end frame) of the best placement of `units` anywhere in the frames.

    The score is the Viterbi log-probability of the keyword's best alignment within its span, per frame, minus the
    per-frame log-probability of the best free path over the same span (0 = the keyword is what the model hears
    there; more negative = less like it). Dividing by the span keeps long and short phrases on one scale.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    if not units:
        raise CTCError("a keyword needs at least one unit")
    states = [blank]
    for u in units:
        states += [u, blank]
    states = np.asarray(states)
    n, frames = len(states), len(lp)
    skip = np.zeros(n, dtype=bool)
    skip[3::2] = states[3::2] != states[1:-2:2]
    free = np.concatenate([[0.0], np.cumsum(lp.max(-1))])  # best free path log-prob up to each frame
    # Viterbi with a free start at any frame: score[s] = best (alignment log-prob) ending at state s now.
    score = np.full(n, -np.inf)
    start = np.zeros(n, dtype=np.int64)
    best = (-np.inf, 0, 0)
    for t in range(frames):
        skipped = np.where(skip, np.r_[-np.inf, -np.inf, score[:-2]], -np.inf)
        prev = np.stack([score, np.r_[-np.inf, score[:-1]], skipped])
        prev_start = np.stack([start, np.r_[0, start[:-1]], np.r_[0, 0, start[:-2]]])
        # Entering the keyword fresh at this frame (state 0: leading blank, state 1: first unit).
        fresh = np.full(n, -np.inf)
        fresh[:2] = 0.0
        prev = np.vstack([prev, fresh])
        prev_start = np.vstack([prev_start, np.full(n, t)])
        choice = prev.argmax(0)
        score = prev[choice, np.arange(n)] + lp[t, states]
        start = prev_start[choice, np.arange(n)]
        for s in (n - 1, n - 2):  # ending after the last unit, with or without a trailing blank
            span = t + 1 - start[s]
            value = (score[s] - (free[t + 1] - free[start[s]])) / span
            if value > best[0]:
                best = (float(value), int(start[s]), t + 1)
    return best
