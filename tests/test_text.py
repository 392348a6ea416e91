"""The sentencepiece tokenizer: trained on the generated transcripts, round trips, errors."""

import pytest

from asr.data.librispeech import LibriSpeech
from asr.text import Tokenizer


@pytest.fixture(scope="module")
def transcripts(sentences_corpus) -> list[str]:
    return LibriSpeech(sentences_corpus, "train-clean-100").transcripts()


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_round_trip(tmp_path, transcripts, sentences_corpus, model_type):
    tok = Tokenizer.train(transcripts, tmp_path / "tok", vocab_size=40, model_type=model_type)
    assert (tmp_path / "tok.model").is_file() and (tmp_path / "tok.vocab").is_file()
    assert 0 < tok.vocab_size <= 40 and tok.blank == tok.vocab_size
    reloaded = Tokenizer(tmp_path / "tok.model")
    for text in transcripts + LibriSpeech(sentences_corpus, "test-clean").transcripts():
        ids = reloaded.encode(text)
        assert ids and all(0 <= i < tok.vocab_size for i in ids)
        assert reloaded.decode(ids) == text
    assert reloaded.decode([*tok.encode("TURN ON"), tok.blank]) == "TURN ON"  # the blank is skipped


def test_vocabulary_is_a_soft_limit(tmp_path, transcripts):
    tok = Tokenizer.train(transcripts[:3], tmp_path / "small", vocab_size=5000)
    assert tok.vocab_size < 5000


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such tokenizer model"):
        Tokenizer(tmp_path / "missing.model")
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.model: not a sentencepiece model"):
        Tokenizer(tmp_path / "junk.model")
    with pytest.raises(ValueError, match="no text"):
        Tokenizer.train(["", " "], tmp_path / "t", vocab_size=10)
    with pytest.raises(ValueError, match="model_type"):
        Tokenizer.train(["A B"], tmp_path / "t", vocab_size=10, model_type="word")
