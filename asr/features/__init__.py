"""Features, first in the flow: settings (`FeatureSpec`), the numpy log-mel front end and window fitting.

Torch-free, so devices import it; the torchaudio twin used in training is `asr.features.logmel.LogMel`.
"""

from asr.features.frontend import (
    StreamingFrontend,
    frames_to_features,
    log_mel,
    mel_filterbank,
    silence_features,
    window,
)
from asr.features.spec import DEFAULT_SPEC, FeatureSpec, fit_window

__all__ = [
    "DEFAULT_SPEC",
    "FeatureSpec",
    "StreamingFrontend",
    "fit_window",
    "frames_to_features",
    "log_mel",
    "mel_filterbank",
    "silence_features",
    "window",
]
