"""The real-speech teacher: it hears words, its embeddings are cached per clip, its loss trains the encoder, and
none of it reaches the device."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_model import tiny_kws_overrides

from asr.config import load_config
from asr.model import build_model
from asr.model.report import parameter_report
from asr.train import teacher
from asr.train.tasks import KeywordTask


def test_teacher_hears_the_word_not_the_voice(commands_corpus, commands_keywords):
    """Clips of one keyword by different voices lie closer together than clips of different keywords."""
    paths = [p for k in commands_keywords for p in sorted((commands_corpus / k).glob("*.wav"))]
    words = np.array([p.parent.name for p in paths])
    clips = np.stack([teacher._fit(teacher.read_audio(p), 16000) for p in paths])
    e = teacher.SpeechEmbedding(threads=2)(clips)
    e -= e.mean(axis=0)  # what all clips share (about 0.95 of the cosine) says nothing about the word
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    similarity = e @ e.T
    same = (words[:, None] == words[None, :]) & ~np.eye(len(words), dtype=bool)
    different = words[:, None] != words[None, :]
    assert similarity[same].mean() > similarity[different].mean() + 0.3  # measured: 0.45 against -0.16
    np.fill_diagonal(similarity, -np.inf)
    nearest = words[similarity.argmax(axis=1)]
    assert (nearest == words).mean() > 0.9  # measured: 1.0; chance: 1 in len(commands_keywords)


def test_embeddings_are_cached_per_clip(tmp_path, commands_corpus, commands_keywords, monkeypatch):
    root = tmp_path / "corpus"
    sources = sorted((commands_corpus / commands_keywords[0]).glob("*.wav"))[:3]
    (root / "w").mkdir(parents=True)
    paths = [Path(shutil.copy(p, root / "w" / p.name)) for p in sources]
    first = teacher.corpus_embeddings(root, paths, 16000)
    assert first.shape == (3, teacher.DIM) and (root / teacher.CACHE_NAME).is_file()

    calls = []
    real = teacher.SpeechEmbedding

    class Counting(real):
        def __call__(self, clips):
            calls.append(len(clips))
            return super().__call__(clips)

    monkeypatch.setattr(teacher, "SpeechEmbedding", Counting)
    assert np.array_equal(teacher.corpus_embeddings(root, paths, 16000), first) and calls == []
    shutil.copy(sources[0], paths[2])  # a clip that changed: only it is heard again
    again = teacher.corpus_embeddings(root, paths, 16000)
    assert calls == [1] and np.allclose(again[2], first[0], atol=1e-4) and np.array_equal(again[:2], first[:2])


def test_missing_teacher_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(teacher.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="tools/setup.sh"):
        teacher.model_dir()


def test_teacher_loss_trains_the_encoder_and_is_not_deployed(tmp_path, commands_corpus, commands_keywords):
    overrides = tiny_kws_overrides(commands_corpus, commands_keywords)
    config = load_config("kws-tiny", overrides | {"train.teacher": 1.0})
    task = KeywordTask(config, tmp_path)
    assert task.teacher.shape == (len(task.train_set.items), teacher.DIM)
    assert np.allclose(task.teacher.mean(axis=0), 0, atol=1e-4)  # standardised per dimension
    batches = task.batches(0, 1)
    *_, targets, has_target = batches[0]
    for index, target, has in zip(batches.global_indices(0), targets, has_target, strict=True):
        if index < len(task.train_set.items):
            assert has and torch.equal(target, torch.from_numpy(task.teacher[index]))
        else:
            assert not has  # `_silence_` has no teacher embedding
    torch.manual_seed(0)
    model = build_model(config, task.num_outputs)
    loss = task.loss(model, batches[0], torch.device("cpu"))
    loss.backward()
    assert torch.isfinite(loss) and model.embedder.weight.grad.abs().sum() > 0
    assert model.encoder.blocks[0].conv_in.weight.grad.abs().sum() > 0
    plain = build_model(load_config("kws-tiny", overrides), task.num_outputs)
    assert plain.embedder is None
    assert parameter_report(model)["unique_parameters"] == parameter_report(plain)["unique_parameters"]
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 97, 40)).shape == (1, task.num_outputs)  # what is exported: logits only
