"""`build_model(config, num_outputs)`: the one place that turns a config into a network."""

from __future__ import annotations

from torch import nn

from asr.config import Config
from asr.errors import InputError
from asr.model.conformer import CTCConformer, KeywordConformer
from asr.model.dscnn import DSCNN
from asr.text import PHONES, SPELLING


def build_model(config: Config, num_outputs: int) -> nn.Module:
    """Keyword task: logits over `num_outputs` classes. CTC task: log-probabilities over `num_outputs`
    (tokenizer vocabulary + 1, blank last)."""
    m, n_mels = config.model, config.features.n_mels
    if m.arch == "dscnn":
        if config.task != "kws":
            raise InputError("model.arch 'dscnn' is a keyword classifier: it needs task = 'kws'")
        return DSCNN(num_outputs, dropout=m.dropout)
    if config.task == "ctc":
        return CTCConformer(m, n_mels, num_outputs)
    units = len(PHONES if config.train.ctc_units == "phones" else SPELLING) if config.train.spell_ctc else 0
    window_frames = config.features.num_frames(config.features.clip_samples)
    return KeywordConformer(m, n_mels, num_outputs, speller_units=units, window_frames=window_frames)


def num_outputs(config: Config) -> int:
    """Output size implied by the config: keyword classes (+ silence, unknown) or tokenizer vocab + blank."""
    if config.task == "ctc":
        return (len(PHONES) if config.data.units == "phones" else config.data.tokenizer_vocab) + 1
    return len(config.data.keywords) + 2
