"""Wake word, then command: a command counts only shortly after the wake word.

With a dozen keywords always listening, every false accept would act; requiring the wake word first means a
false command needs two errors within a few seconds.
"""

from __future__ import annotations

from asr.errors import InputError
from asr.runtime.detector import Detection


class WakeGate:
    """Passes the wake word and at most one command within `window_s` seconds after it."""

    def __init__(self, wake_word: str, labels: list[str], window_s: float = 3.0) -> None:
        if wake_word not in labels:
            raise InputError(f"wake word {wake_word!r} is not one of the model's labels {labels}")
        self.wake_word, self.window_s = wake_word, window_s
        self._open_until = float("-inf")

    def accept(self, detection: Detection) -> bool:
        if detection.label == self.wake_word:
            self._open_until = detection.time_s + self.window_s
            return True
        if detection.time_s <= self._open_until:
            self._open_until = float("-inf")  # one command per wake word
            return True
        return False
