"""What a keyword model's labels mean: the two filler classes first, then the keywords (which may fire)."""

from __future__ import annotations

SILENCE, UNKNOWN = "_silence_", "_unknown_"
FILLERS = (SILENCE, UNKNOWN)


def keyword_labels(keywords: list[str]) -> list[str]:
    """The label list of a model spotting `keywords`."""
    return [*FILLERS, *keywords]


def is_keyword(label: str) -> bool:
    """Filler classes (and any label starting with "_") never fire."""
    return not label.startswith("_")


def keywords(labels: list[str]) -> list[str]:
    return [label for label in labels if is_keyword(label)]


def keyword_indices(labels: list[str]) -> list[int]:
    return [i for i, label in enumerate(labels) if is_keyword(label)]
