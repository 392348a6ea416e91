"""Stored (unique) against computed (effective) parameters: what tying saves.

Unique parameters are the tensors a checkpoint or an int8 file stores; effective parameters count every depth
with the block it runs, i.e. the size of the untied network doing the same computation.
"""

from __future__ import annotations

from torch import nn

from asr.model.conformer import TiedConformerEncoder

TRAINING_ONLY = {"speller"}  # heads that only shape training; never exported, not counted


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _rows(model: nn.Module) -> list[tuple[str, int, int]]:
    """(name, unique, effective) per top-level part, with a tied encoder split into blocks, norms, adapters."""
    rows = []
    for name, child in model.named_children():
        if name in TRAINING_ONLY:
            continue
        if isinstance(child, TiedConformerEncoder):
            stored = sum(_count(b) for b in child.blocks)
            computed = sum(_count(child.blocks[i]) for i in child.plan)
            rows.append((f"{name}.blocks", stored, computed))
            for part in ("depth_norms", "adapters"):
                if getattr(child, part) is not None:
                    n = _count(getattr(child, part))
                    rows.append((f"{name}.{part}", n, n))
        elif _count(child):
            rows.append((name, _count(child), _count(child)))
    return rows


def parameter_report(model: nn.Module) -> dict:
    """{"unique_parameters", "effective_parameters", "ratio", "buffer_elements", "by_module": {name: {...}}}."""
    rows = _rows(model)
    # parameters() yields a shared tensor once
    unique = sum(p.numel() for name, p in model.named_parameters() if name.split(".")[0] not in TRAINING_ONLY)
    effective = sum(e for _, _, e in rows)
    encoder = next((c for c in model.children() if isinstance(c, TiedConformerEncoder)), None)
    return {
        "unique_parameters": unique,
        "effective_parameters": effective,
        "ratio": effective / unique,
        "buffer_elements": sum(b.numel() for b in model.buffers()),
        "plan": encoder.plan if encoder is not None else None,
        "by_module": {name: {"unique": u, "effective": e} for name, u, e in rows},
    }


def format_report(report: dict) -> str:
    """The report as a plain-text table."""
    lines = [f"{'module':<22}{'unique':>12}{'effective':>12}"]
    for name, row in report["by_module"].items():
        lines.append(f"{name:<22}{row['unique']:>12,}{row['effective']:>12,}")
    lines.append(f"{'total':<22}{report['unique_parameters']:>12,}{report['effective_parameters']:>12,}")
    lines.append(f"effective / unique: {report['ratio']:.2f}x")
    if report["plan"] is not None:
        lines.append(f"block per depth: {report['plan']}")
    lines.append(f"int8 weights: about {report['unique_parameters'] / 1024:.1f} KiB stored")
    return "\n".join(lines)
