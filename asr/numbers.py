"""Numbers as they are spoken, one rule for the grammar's sentences (asr.data.grammar) and for reading them back as
intents on the device (asr.runtime.intent)."""

from __future__ import annotations

from asr.errors import InputError

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen \
seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spoken_number(n: int) -> str:
    """0-999 in words. Small enough to write out rather than add a dependency (num2words) for it."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + spoken_number(rest))
    raise InputError(f"spoken_number handles 0-999, not {n}")
