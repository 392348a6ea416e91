"""Convolutional subsampling: log-mel frames -> d_model vectors at 1/2 or 1/4 of the frame rate.

Attention costs grow with the square of the sequence length, so the encoder runs on fewer, richer frames.
Two 3x3 convolutions halve the mel axis twice; the time axis is halved twice (x4) or once (x2).
"""

from __future__ import annotations

import torch
from torch import nn

from asr.errors import InputError


def _conv_out(length, stride: int):
    return (length - 3) // stride + 1


class ConvSubsampling(nn.Module):
    def __init__(self, n_mels: int, d_model: int, factor: int, channels: int):
        super().__init__()
        if factor not in (2, 4):
            raise InputError(f"subsampling factor must be 2 or 4, not {factor}")
        self.time_strides = (2, factor // 2)
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=(self.time_strides[0], 2)),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=(self.time_strides[1], 2)),
            nn.ReLU(),
        )
        self.proj = nn.Linear(channels * _conv_out(_conv_out(n_mels, 2), 2), d_model)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames out for `lengths` frames in."""
        for stride in self.time_strides:
            lengths = _conv_out(lengths, stride)
        return lengths

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, T, n_mels] -> [B, T', d_model]."""
        h = self.conv(features.unsqueeze(1))  # [B, C, T', F']
        b, c, t, f = h.shape
        return self.proj(h.permute(0, 2, 1, 3).reshape(b, t, c * f))
