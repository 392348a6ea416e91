"""Near-misses of a keyword (asr.data.near_misses): a consonant away from every reading, never the word itself nor
another keyword."""

import numpy as np
import pytest

from asr.data.near_misses import near_misses, segments, skeleton, variants

MARVIN = ["mˈɑːɹvɪn", "mˈɑːvɪn"]  # Kokoro's US and UK readings


def test_a_reading_splits_into_consonants_and_vowels_with_their_marks():
    assert segments("mˈɑːɹvɪn") == ["m", "ˈɑː", "ɹ", "v", "ɪ", "n"]
    assert segments("dˈaʊn") == ["d", "ˈaʊ", "n"]
    assert segments("hˈeɪ dʒˈɑːvɪs") == ["h", "ˈeɪ", " ", "d", "ʒ", "ˈɑː", "v", "ɪ", "s"]


def test_an_accent_keeps_the_skeleton_and_a_consonant_changes_it():
    us, uk = (skeleton(segments(r)) for r in MARVIN)
    assert us == uk == ("m", "v", "n")  # the r after a vowel is the one a non-rhotic accent drops
    assert skeleton(segments("mˈɑːɹvɪs")) != us  # "marvis"
    assert skeleton(segments("ɹˈɑːvɪn")) != us  # an r before a vowel is a consonant like any other


def test_the_words_own_variants_swap_only_unstressed_vowels():
    own = variants(MARVIN[0])
    assert own[0] == MARVIN[0] and len(own) == len(set(own)) == 3
    assert {skeleton(segments(v)) for v in own} == {("m", "v", "n")}
    assert all(v.startswith("mˈɑːɹv") for v in own)


def test_near_misses_are_distinct_never_the_word_and_reproducible():
    found = near_misses(MARVIN, 300, np.random.default_rng(0))
    assert len(found) == len(set(found)) == 300
    for miss in found:
        assert skeleton(segments(miss)) != ("m", "v", "n"), miss
        assert not any(r in miss for r in MARVIN), f"{miss} says the wake word whole"
    assert near_misses(MARVIN, 300, np.random.default_rng(0)) == found
    assert near_misses(MARVIN, 300, np.random.default_rng(1)) != found


def test_a_near_miss_never_sounds_like_another_keyword():
    """A spotter of "no" and "go" (a consonant apart) must not learn "go" as "not a keyword"."""
    no = ["nˈoʊ", "nˈəʊ"]
    others = frozenset({("ɡ",), ("p",)})  # "go", "up"
    assert ("ɡ",) in {skeleton(segments(m)) for m in near_misses(no, 60, np.random.default_rng(0))}
    found = near_misses(no, 60, np.random.default_rng(0), avoid=others)
    assert len(found) == 60 and not {skeleton(segments(m)) for m in found} & (others | {("n",)})


def test_a_phrase_keeps_its_word_boundary():
    found = near_misses(["hˈeɪ dʒˈɑːɹvɪs"], 20, np.random.default_rng(0))
    assert len(found) == 20 and all(m.count(" ") == 1 for m in found)


def test_no_phones_is_refused():
    with pytest.raises(ValueError, match="no phones"):
        near_misses([""], 5, np.random.default_rng(0))
