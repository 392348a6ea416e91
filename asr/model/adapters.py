"""Per-depth low-rank adapters on shared projections (the LoRA relaxation of Relaxed Recursive Transformers).

Depth i computes `W x + B_i A_i x` where W is the shared weight. B starts at zero, so a relaxed model starts out
exactly equal to its strictly tied parent and each depth learns only a rank-r difference.
"""

from __future__ import annotations

import torch
from torch import nn


class LoRA(nn.Module):
    """The low-rank update `B A x` for one projection of shape [out_features, in_features]."""

    def __init__(self, in_features: int, out_features: int, rank: int):
        super().__init__()
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=5**0.5)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


def projection_shapes(d_model: int, ffn_dim: int) -> dict[str, tuple[int, int]]:
    """(in, out) of every shared Linear projection in a Conformer block, by its attribute name."""
    return {
        "ffn1_up": (d_model, ffn_dim),
        "ffn1_down": (ffn_dim, d_model),
        "attn_in": (d_model, 3 * d_model),
        "attn_out": (d_model, d_model),
        "conv_in": (d_model, 2 * d_model),
        "conv_out": (d_model, d_model),
        "ffn2_up": (d_model, ffn_dim),
        "ffn2_down": (ffn_dim, d_model),
    }


class BlockAdapters(nn.ModuleDict):
    """One depth's adapters, keyed by the projection they adapt."""

    def __init__(self, d_model: int, ffn_dim: int, rank: int):
        super().__init__({name: LoRA(i, o, rank) for name, (i, o) in projection_shapes(d_model, ffn_dim).items()})
