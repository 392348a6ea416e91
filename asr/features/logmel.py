"""The torch front end for training: the same features as `asr.features`, on torchaudio."""

from __future__ import annotations

import torch
import torchaudio

from asr.features import DEFAULT_SPEC, FeatureSpec


class LogMel(torch.nn.Module):
    """Waveform [batch, samples] -> normalised log-mel [batch, frames, n_mels]."""

    def __init__(self, spec: FeatureSpec = DEFAULT_SPEC):
        super().__init__()
        self.spec = spec
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=spec.sample_rate,
            n_fft=spec.n_fft,
            hop_length=spec.hop_length,
            f_min=spec.f_min,
            f_max=spec.f_max,
            n_mels=spec.n_mels,
            window_fn=torch.hann_window,
            power=2.0,
            center=False,
            mel_scale="htk",
            norm=None,
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        mel = self.mel(waveform.float()).transpose(-1, -2)
        return (torch.log(mel + self.spec.log_offset) - self.spec.mean) / self.spec.std
