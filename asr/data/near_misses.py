"""Near-misses of a wake word, in phones: what its verifier learns as "not the wake word".

openWakeWord trains against adversarial phrases that sound like the wake word; this is the same idea on phones
(Kokoro's IPA, which `asr.data.kokoro` speaks). The false wakes left on real speech are words a consonant away
("marvin": "mavros", "marvis"), so a near-miss changes, drops or inserts a consonant. Vowels are not what makes
the word: an accent moves them, and a non-rhotic one drops the r after a vowel ("marvin" is mˈɑːɹvɪn in the US and
mˈɑːvɪn in the UK). So the word's *skeleton*, its consonants without a post-vocalic r, decides: a near-miss has
another skeleton, and the word's own variants (its readings with the unstressed vowels swapped) keep it.
A string that holds the word's whole reading ("marvins") is never a near-miss: it says the wake word.
"""

from __future__ import annotations

import numpy as np

VOWELS = set("aeiouæɑɒɔəɚɛɜɪʊʌɐᵻ")
STRESS = set("ˈˌ")  # before a vowel; its length mark ː follows it
CONSONANTS = ["b", "d", "f", "ɡ", "h", "k", "l", "m", "n", "p", "s", "t", "v", "w", "z", "ð", "ʃ", "ŋ", "ɹ"]
REDUCED = ["ɪ", "ə", "ɛ"]  # the unstressed vowels accents trade
OTHER_VOWELS = ["ɪ", "ə", "i", "ɛ", "oʊ"]  # an unstressed vowel of a near-miss: anything, it is not the word anyway
SECOND_EDIT = 0.25  # share of near-misses with two edits


def segments(phones: str) -> list[str]:
    """`mˈɑːɹvɪn` -> ["m", "ˈɑː", "ɹ", "v", "ɪ", "n"]: consonants one by one, a vowel run with its marks, " "
    between words."""
    out: list[str] = []
    pending = ""
    for ch in phones:
        if ch in STRESS:
            pending += ch
        elif ch in VOWELS or ch == "ː":
            if out and is_vowel(out[-1]) and not pending:
                out[-1] += ch
            else:
                out.append(pending + ch)
                pending = ""
        elif ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")  # a word boundary: kept, never edited
        else:
            out.append(pending + ch)
            pending = ""
    return out


def is_vowel(segment: str) -> bool:
    return any(ch in VOWELS for ch in segment)


def unstressed(segs: list[str]) -> list[int]:
    """Positions of the short vowels without stress: the ones an accent reduces."""
    return [i for i, s in enumerate(segs) if is_vowel(s) and "ˈ" not in s and "ː" not in s]


def skeleton(segs: list[str]) -> tuple[str, ...]:
    """The consonants, without an r after a vowel (the one non-rhotic accents drop)."""
    return tuple(
        s
        for i, s in enumerate(segs)
        if not is_vowel(s) and s != " " and not (s == "ɹ" and i > 0 and is_vowel(segs[i - 1]))
    )


def variants(phones: str) -> list[str]:
    """The word's readings with each unstressed vowel swapped among the reduced vowels (the reading first)."""
    segs = segments(phones)
    out = [segs]
    for i in unstressed(segs):
        out += [o[:i] + [v] + o[i + 1 :] for o in out for v in REDUCED if v != segs[i]]
    return list(dict.fromkeys("".join(o) for o in out))


def _edit(segs: list[str], rng: np.random.Generator) -> list[str]:
    consonants = [i for i, s in enumerate(segs) if not is_vowel(s) and s != " "]
    kind = rng.choice(["substitute", "drop", "insert"], p=[0.6, 0.2, 0.2])
    if kind == "insert" or not consonants:
        at = int(rng.integers(1, len(segs))) if len(segs) > 1 else 1  # inside: an edge would just add a sound
        return segs[:at] + [str(rng.choice(CONSONANTS))] + segs[at:]
    i = int(rng.choice(consonants))
    if kind == "drop" and len(consonants) > 1:
        return segs[:i] + segs[i + 1 :]
    return segs[:i] + [str(rng.choice([c for c in CONSONANTS if c != segs[i]]))] + segs[i + 1 :]


def near_misses(
    readings: list[str], count: int, rng: np.random.Generator, avoid: frozenset[tuple[str, ...]] = frozenset()
) -> list[str]:
    """`count` distinct phone strings a consonant or two from the word (its `readings`, e.g. US and UK), none with
    the skeleton of a reading or one in `avoid` (other words it must not teach away: "go" is no near-miss of "no"
    for a spotter of both), none holding a reading whole. Fewer when the word has fewer neighbours."""
    words = [segments(r) for r in readings]
    if not all(words):
        raise ValueError(f"no phones in the readings {readings!r}")
    skeletons = {skeleton(w) for w in words} | avoid
    found: dict[str, None] = {}
    for _ in range(50 * count):
        if len(found) == count:
            break
        segs = words[int(rng.integers(len(words)))]
        segs = _edit(segs, rng)
        if rng.random() < SECOND_EDIT:
            segs = _edit(segs, rng)
        reducible = unstressed(segs)
        if reducible and rng.random() < 0.5:
            i = int(rng.choice(reducible))
            segs = segs[:i] + [str(rng.choice(OTHER_VOWELS))] + segs[i + 1 :]
        text = "".join(segs)
        doubled = any(a == b for a, b in zip(segs, segs[1:], strict=False))
        if doubled or skeleton(segs) in skeletons or any(r in text for r in readings):
            continue
        found[text] = None
    return list(found)
