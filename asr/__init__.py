"""Depth-tied Conformer speech recognition for embedded targets.

`from asr import KeywordSpotter` (an export's keywords), `from asr import PhraseListener` (phrases defined by
text, set up by `asr phrases`) and `from asr import Recognizer` (words and a grammar's requests from a CTC export)
are the device-side API (numpy and a TFLite interpreter; no torch).
"""

__version__ = "0.2.0"
__all__ = ["KeywordSpotter", "PhraseListener", "Recognizer"]


def __getattr__(name: str):
    # Lazy, so `import asr.train` never loads the device side and `import asr` alone loads nothing.
    if name == "KeywordSpotter":
        from asr.runtime.spotter import KeywordSpotter

        return KeywordSpotter
    if name == "PhraseListener":
        from asr.runtime.phrase_listener import PhraseListener

        return PhraseListener
    if name == "Recognizer":
        from asr.runtime.recognizer import Recognizer

        return Recognizer
    raise AttributeError(f"module 'asr' has no attribute {name!r}")
