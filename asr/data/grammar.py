"""Sentences from the smart-speaker grammar (default_recipe/grammar.toml), numbers spelled out as spoken, and
reading sentences: common words in random order."""

from __future__ import annotations

import re

import numpy as np

from asr.errors import InputError
from asr.numbers import spoken_number

READING_WORDS = (4, 10)  # words in a reading sentence, inclusive


def templates(grammar: dict, heldout: bool) -> list[str]:
    """The templates of the training splits (heldout=False) or the held-out ones (heldout=True)."""
    return [t["text"] for t in grammar["templates"] if bool(t.get("heldout", False)) == heldout]


def fill(template: str, grammar: dict, rng: np.random.Generator) -> str:
    """One sentence: each {slot} replaced by a random filler or a spoken number in the slot's range."""

    def pick(match: re.Match) -> str:
        name = match.group(1)
        if name in grammar["numbers"]:
            lo, hi = grammar["numbers"][name]
            return spoken_number(int(rng.integers(lo, hi + 1)))
        if name not in grammar["slots"]:
            raise InputError(f"grammar template {template!r}: unknown slot {{{name}}}")
        options = grammar["slots"][name]
        return options[int(rng.integers(len(options)))]

    return re.sub(r"\{(\w+)\}", pick, template)


def sentence(grammar: dict, rng: np.random.Generator, heldout_share: float = 0.0) -> str:
    """A random sentence; with probability `heldout_share` from a held-out template (testing split only)."""
    pool = templates(grammar, heldout=bool(heldout_share) and rng.random() < heldout_share)
    return fill(pool[int(rng.integers(len(pool)))], grammar, rng)


def vocabulary(grammar: dict) -> list[str]:
    """The words of the training templates and of the slot fillers (held-out templates' words are not taken)."""
    text = " ".join(templates(grammar, heldout=False) + [v for options in grammar["slots"].values() for v in options])
    return sorted(set(re.sub(r"\{\w+\}", " ", text).split()))


def reading(words: list[str], rng: np.random.Generator) -> str:
    """A sentence of 4-10 words drawn at random from `words`. No template orders them, so a model trained on such
    sentences has to hear each word rather than guess it from its neighbours (a model trained on the 24 templates
    alone writes training sentences for new ones: BENCHMARKS.md section 8)."""
    n = int(rng.integers(READING_WORDS[0], READING_WORDS[1] + 1))
    return " ".join(words[int(i)] for i in rng.integers(len(words), size=n))
