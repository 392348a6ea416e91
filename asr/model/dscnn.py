"""The DS-CNN keyword baseline (ARM "Hello Edge", DS-CNN-S): the classic microcontroller CNN to compare against.

A 10x4 convolution with stride 2, four depthwise-separable blocks of 64 channels (BatchNorm + ReLU after each
convolution), average pooling, and a linear classifier. Same interface as the keyword Conformer.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn_relu(cin: int, cout: int, kernel, stride=1, padding=0, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


class DSCNN(nn.Module):
    """features [B, T, n_mels] -> logits [B, C]."""

    def __init__(self, num_classes: int, channels: int = 64, blocks: int = 4, dropout: float = 0.1):
        super().__init__()
        layers = _conv_bn_relu(1, channels, (10, 4), stride=2, padding=(5, 1))
        for _ in range(blocks):
            layers += _conv_bn_relu(channels, channels, 3, padding=1, groups=channels)  # depthwise
            layers += _conv_bn_relu(channels, channels, 1)  # pointwise
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.features(features.unsqueeze(1)).mean(dim=(2, 3))
        return self.classifier(self.dropout(h))
