"""Background speech as a negative class: 1 s crops of training sentences are `_unknown_` examples."""

import numpy as np
import pytest
import torch
from fixtures_model import tiny_kws_overrides

from asr.config import ConfigError, load_config
from asr.model import build_model
from asr.train.tasks import KeywordTask


def test_speech_negatives_are_unknown_crops_of_sentences(
    tmp_path, commands_corpus, commands_keywords, sentences_corpus
):
    overrides = tiny_kws_overrides(commands_corpus, commands_keywords) | {"data.speech_root": str(sentences_corpus)}
    task = KeywordTask(load_config("kws-tiny", overrides | {"train.speech_negatives": 0.5}), tmp_path)
    batches = task.batches(0, 1)
    speech = batches.speech
    assert speech is not None and len(speech) > 0
    rng_draws = [np.random.default_rng([batches.seed, 0, j]).random() < 0.5 for j in range(batches.batch_size)]
    batch = batches[0]
    _, labels, _, lengths = batch
    unknown = task.labels.index("_unknown_")
    assert 0 < sum(rng_draws) < len(rng_draws)
    assert all(label == unknown for is_speech, label in zip(rng_draws, labels.tolist(), strict=True) if is_speech)
    assert [n < 0 for n in lengths.tolist()] == rng_draws  # a crop has no transcript: no phone target
    model = build_model(task.config, task.num_outputs)
    loss = task.loss(model, batch, torch.device("cpu"))  # the phone loss skips the crops
    loss.backward()
    assert torch.isfinite(loss) and model.speller.weight.grad.abs().sum() > 0
    plain = KeywordTask(load_config("kws-tiny", overrides), tmp_path).batches(0, 1)
    assert plain.speech is None
    _, plain_labels, _, _ = plain[0]
    replaced = [label for is_speech, label in zip(rng_draws, plain_labels.tolist(), strict=True) if is_speech]
    assert any(label != unknown for label in replaced)  # keyword and silence examples became speech


def test_speech_negatives_need_a_sentences_corpus(commands_corpus, commands_keywords):
    overrides = tiny_kws_overrides(commands_corpus, commands_keywords) | {"train.speech_negatives": 0.2}
    with pytest.raises(ConfigError, match="data.speech_root"):
        load_config("kws-tiny", overrides)
