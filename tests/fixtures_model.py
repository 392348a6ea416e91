"""Session fixtures of the model stage (see conftest.py): a tiny tied keyword model trained on real generated clips."""

from pathlib import Path

import pytest

from asr.config import load_config
from asr.train.loop import train

# A small tied model (2 depths, one stored block): the keyword and the CTC fixtures train it in about a minute.
TINY_TIED_MODEL = {
    "model.d_model": 32,
    "model.n_heads": 4,
    "model.ffn_dim": 64,
    "model.kernel_size": 7,
    "model.depth": 2,
    "model.sharing": "all",
    "model.unique_blocks": 1,
    "model.per_depth_norm": True,
    "model.dropout": 0.0,
}


def tiny_kws_overrides(corpus: Path, keywords: list[str]) -> dict:
    """The tiny tied model on a tiny keyword corpus, trained in well under a minute on 2 cores."""
    return {
        "data.root": str(corpus),
        "data.keywords": keywords,
        "data.unknown_fraction": 1.0,
        **TINY_TIED_MODEL,
        "train.batch_size": 32,
        "train.lr": 3e-3,
        "train.warmup_steps": 20,
        "train.noise_prob": 0.3,
        "train.num_workers": 1,
    }


@pytest.fixture(scope="session")
def kws_checkpoint(tmp_path_factory, commands_corpus, commands_keywords) -> Path:
    """best.pt of a tiny tied keyword model trained on `commands_corpus` (about a minute)."""
    overrides = tiny_kws_overrides(commands_corpus, commands_keywords) | {
        "train.steps": 240,
        "train.eval_every": 80,
        "train.checkpoint_every": 80,
    }
    run_dir = tmp_path_factory.mktemp("kws-run")
    train(load_config("kws-tiny", overrides), run_dir, progress=False)
    return run_dir / "best.pt"
