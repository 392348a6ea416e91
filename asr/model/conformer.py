"""The tied-depth Conformer: subsampling, N layers computed by M stored blocks, and a task head."""

from __future__ import annotations

import torch
from torch import nn

from asr.config import ModelConfig
from asr.errors import InputError
from asr.model.adapters import BlockAdapters
from asr.model.block import BlockNorms, ConformerBlock
from asr.model.sharing import sharing_plan
from asr.model.subsampling import ConvSubsampling


class TiedConformerEncoder(nn.Module):
    """Depth i runs `blocks[plan[i]]`: the same module instance, so shared tensors are stored once.

    With `per_depth_norm` every depth owns its normalisation (LayerNorms and BatchNorm statistics); with
    `lora_rank` > 0 every depth owns low-rank adapters on the shared projections.
    """

    def __init__(self, m: ModelConfig, context: int = 0):
        super().__init__()
        self.plan = sharing_plan(m.sharing, m.depth, m.unique_blocks)
        n_blocks = max(self.plan) + 1
        self.blocks = nn.ModuleList(
            ConformerBlock(m.d_model, m.n_heads, m.ffn_dim, m.kernel_size, m.dropout, not m.per_depth_norm, context)
            for _ in range(n_blocks)
        )
        self.depth_norms = nn.ModuleList(BlockNorms(m.d_model) for _ in self.plan) if m.per_depth_norm else None
        self.adapters = (
            nn.ModuleList(BlockAdapters(m.d_model, m.ffn_dim, m.lora_rank) for _ in self.plan) if m.lora_rank else None
        )

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        for depth, index in enumerate(self.plan):
            norms = self.depth_norms[depth] if self.depth_norms is not None else None
            adapters = self.adapters[depth] if self.adapters is not None else None
            x = self.blocks[index](x, norms, adapters, pad_mask)
        return x


class ConformerWithHead(nn.Module):
    """Subsampling, the tied encoder and a linear head: what the keyword and CTC models share.

    A causal model (`m.causal`) attends over the last `window_frames` feature frames' worth of encoder frames: all
    of a training window, and what a stream's key cache holds.
    """

    def __init__(self, m: ModelConfig, n_mels: int, num_outputs: int, window_frames: int = 0):
        super().__init__()
        self.subsampling = ConvSubsampling(n_mels, m.d_model, m.subsampling, m.subsampling_channels)
        if m.causal and window_frames <= 0:
            raise InputError("a causal model needs the window length (window_frames) its attention spans")
        self.context = int(self.subsampling.output_lengths(window_frames)) if m.causal else 0
        self.encoder = TiedConformerEncoder(m, self.context)
        self.dropout = nn.Dropout(m.dropout)
        self.classifier = nn.Linear(m.d_model, num_outputs)


class KeywordConformer(ConformerWithHead):
    """features [B, T, n_mels] -> class logits [B, C]: encoder, mean over time (or over its last `head_frames`
    frames, which in a causal model have heard the whole window), linear.

    With a `speller` (training only, never exported), training mode also returns letter (or phone) log-probabilities per
    encoder frame, for an auxiliary CTC loss that spells every word heard, keyword or not.
    """

    def __init__(self, m: ModelConfig, n_mels: int, num_outputs: int, speller_units: int = 0, window_frames: int = 0):
        super().__init__(m, n_mels, num_outputs, window_frames)
        self.head_frames = m.head_frames
        self.speller = nn.Linear(m.d_model, speller_units + 1) if speller_units else None

    def forward(self, features: torch.Tensor):
        h = self.encoder(self.dropout(self.subsampling(features)))
        logits = self.classifier(h[:, -self.head_frames :].mean(dim=1))
        if self.training and self.speller is not None:
            return logits, torch.log_softmax(self.speller(h), dim=-1)
        return logits


class CTCConformer(ConformerWithHead):
    """features [B, T, n_mels] (+ lengths) -> log-probabilities [B, T', vocab + 1]; blank is the last index."""

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.subsampling.output_lengths(lengths)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.dropout(self.subsampling(features))
        pad_mask = None
        if lengths is not None:
            out_lengths = self.output_lengths(lengths)
            pad_mask = torch.arange(h.shape[1], device=h.device)[None, :] >= out_lengths[:, None]
        h = self.encoder(h, pad_mask)
        return torch.log_softmax(self.classifier(h), dim=-1)
