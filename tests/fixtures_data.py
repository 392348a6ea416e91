"""Session fixtures of the data stage (see conftest.py): tiny synthesized corpora in the real corpora's layouts."""

from pathlib import Path

import pytest

from asr.data.recipe import load_recipe
from asr.data.synth import build_corpus


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generated")


@pytest.fixture(scope="session")
def commands_corpus(generated_dir) -> Path:
    """A tiny Speech Commands v2 tree (keywords: `commands_keywords`), synthesized in a few seconds."""
    return build_corpus("commands", generated_dir, scale="tiny", seed=0, jobs=2)


@pytest.fixture(scope="session")
def commands_keywords() -> list[str]:
    """The keywords the tiny commands corpus has folders for (the wake word first)."""
    return load_recipe().scale("tiny").keywords


@pytest.fixture(scope="session")
def sentences_corpus(generated_dir) -> Path:
    """A tiny LibriSpeech root (train-clean-100/, dev-clean/, test-clean/, SPEAKERS.TXT)."""
    return build_corpus("sentences", generated_dir, scale="tiny", seed=0, jobs=2)
