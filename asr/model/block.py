"""One Conformer block whose projections can be shared across depths.

The computation mirrors `torchaudio.models.conformer.ConformerLayer` (half-step FFN, self-attention, convolution
module with GLU + depthwise conv + BatchNorm + SiLU, half-step FFN, final LayerNorm; a test holds the two equal).
We write our own because the relaxations need what torchaudio's layer cannot express: the normalisation
parameters and the low-rank adapters are passed in per depth, around projections that stay shared.
Attention is plain matmul + softmax and activations are SiLU/GLU: every op has a TFLite Micro kernel.
"""

from __future__ import annotations

import torch
from torch import nn

from asr.model.adapters import BlockAdapters


class BlockNorms(nn.Module):
    """The normalisation layers of one block: shared with the block, or one set per depth (`per_depth_norm`)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.ffn1 = nn.LayerNorm(d_model)
        self.attn = nn.LayerNorm(d_model)
        self.conv = nn.LayerNorm(d_model)
        self.conv_bn = nn.BatchNorm1d(d_model)  # folds into the depthwise conv at export
        self.ffn2 = nn.LayerNorm(d_model)
        self.final = nn.LayerNorm(d_model)


class ConformerBlock(nn.Module):
    """Shared projections of a Conformer block. `forward` takes the depth's norms and adapters.

    `context` > 0 makes it causal, as a stream computes it: attention to the last `context` frames (itself
    included) and a depthwise convolution over the current and earlier frames only.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        ffn_dim: int,
        kernel_size: int,
        dropout: float,
        own_norms: bool = True,
        context: int = 0,
    ):
        super().__init__()
        self.n_heads, self.context = n_heads, context
        self.ffn1_up = nn.Linear(d_model, ffn_dim)
        self.ffn1_down = nn.Linear(ffn_dim, d_model)
        self.attn_in = nn.Linear(d_model, 3 * d_model)  # q, k, v stacked like nn.MultiheadAttention.in_proj
        self.attn_out = nn.Linear(d_model, d_model)
        self.conv_in = nn.Linear(d_model, 2 * d_model)  # the pointwise conv before the GLU
        # Causal: the kernel's K - 1 frames of padding all go on the left (in `_conv`), so no frame hears a later one.
        padding = 0 if context else kernel_size // 2
        self.conv_dw = nn.Conv1d(d_model, d_model, kernel_size, padding=padding, groups=d_model)
        self.conv_out = nn.Linear(d_model, d_model)
        self.ffn2_up = nn.Linear(d_model, ffn_dim)
        self.ffn2_down = nn.Linear(ffn_dim, d_model)
        self.dropout = nn.Dropout(dropout)
        self.norms = BlockNorms(d_model) if own_norms else None

    def _proj(self, name: str, x: torch.Tensor, adapters: BlockAdapters | None) -> torch.Tensor:
        y = getattr(self, name)(x)
        return y if adapters is None else y + adapters[name](x)

    def _ffn(self, prefix: str, x: torch.Tensor, adapters: BlockAdapters | None) -> torch.Tensor:
        h = self.dropout(nn.functional.silu(self._proj(f"{prefix}_up", x, adapters)))
        return self.dropout(self._proj(f"{prefix}_down", h, adapters))

    def _attention(self, x: torch.Tensor, adapters: BlockAdapters | None, pad_mask: torch.Tensor | None):
        b, t, d = x.shape
        q, k, v = self._proj("attn_in", x, adapters).chunk(3, dim=-1)
        q, k, v = (z.reshape(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (d // self.n_heads) ** -0.5
        if pad_mask is not None:  # [B, T] True at padding: padded keys get no attention
            scores = scores.masked_fill(pad_mask[:, None, None, :], float("-inf"))
        if self.context:  # causal: query t attends to keys t - context < j <= t, as a stream with a key cache would
            offset = torch.arange(t, device=x.device)[:, None] - torch.arange(t, device=x.device)[None, :]
            scores = scores.masked_fill((offset < 0) | (offset >= self.context), float("-inf"))
        h = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, t, d)
        return self.dropout(self._proj("attn_out", h, adapters))

    def _conv(self, x: torch.Tensor, bn: nn.BatchNorm1d, adapters, pad_mask: torch.Tensor | None):
        h = nn.functional.glu(self._proj("conv_in", x, adapters), dim=-1)
        if pad_mask is not None:  # keep padding out of the convolution's receptive field
            h = h.masked_fill(pad_mask[..., None], 0.0)
        h = h.transpose(1, 2)
        if self.context:
            h = nn.functional.pad(h, (self.conv_dw.kernel_size[0] - 1, 0))
        h = nn.functional.silu(bn(self.conv_dw(h))).transpose(1, 2)
        return self.dropout(self._proj("conv_out", h, adapters))

    def forward(
        self,
        x: torch.Tensor,
        norms: BlockNorms | None = None,
        adapters: BlockAdapters | None = None,
        pad_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]. `norms` defaults to the block's own."""
        n = norms if norms is not None else self.norms
        x = x + 0.5 * self._ffn("ffn1", n.ffn1(x), adapters)
        x = x + self._attention(n.attn(x), adapters, pad_mask)
        x = x + self._conv(n.conv(x), n.conv_bn, adapters, pad_mask)
        x = x + 0.5 * self._ffn("ffn2", n.ffn2(x), adapters)
        return n.final(x)
