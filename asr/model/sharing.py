"""Which stored block computes each depth: the cross-layer sharing plan (ALBERT-style tying).

The tied model reuses the same module instance at every depth mapped to it, so a block's tensors are
stored once however many depths run it.
"""

from __future__ import annotations

from asr.config import ConfigError

PLANS = ("none", "all", "cycle", "sequence")


def sharing_plan(sharing: str, depth: int, unique_blocks: int) -> list[int]:
    """Stored block index for each of `depth` layers, for `unique_blocks` stored blocks.

    none: every depth has its own block (M = N; M = 1 is accepted as "not given", the config default);
    all: one block for all depths (M = 1); cycle: A B A B ...; sequence: A A B B ...
    """
    if depth < 1:
        raise ConfigError(f"model.depth must be >= 1, not {depth}")
    if sharing == "none":
        if unique_blocks not in (1, depth):
            raise ConfigError(f"model.sharing 'none' stores one block per depth: unique_blocks must be {depth}")
        return list(range(depth))
    if sharing == "all":
        if unique_blocks != 1:
            raise ConfigError(f"model.sharing 'all' stores one block: unique_blocks must be 1, not {unique_blocks}")
        return [0] * depth
    if sharing not in PLANS:
        raise ConfigError(f"model.sharing {sharing!r} is unknown; choose one of {list(PLANS)}")
    if not 1 <= unique_blocks <= depth or depth % unique_blocks:
        raise ConfigError(f"model.sharing {sharing!r}: unique_blocks M={unique_blocks} must divide depth N={depth}")
    if sharing == "cycle":
        return [i % unique_blocks for i in range(depth)]
    run = depth // unique_blocks
    return [i // run for i in range(depth)]
