"""Sentences from the smart-speaker grammar (default_recipe/grammar.toml), numbers spelled out as spoken."""

from __future__ import annotations

import re

import numpy as np

from asr.errors import InputError
from asr.numbers import spoken_number


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
