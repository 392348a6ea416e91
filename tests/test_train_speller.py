"""The auxiliary spelling loss: its targets are the words spoken, it trains, and it never reaches the device."""

import torch
from fixtures_model import tiny_kws_overrides

from asr.config import load_config
from asr.model import build_model
from asr.model.report import parameter_report
from asr.text import PHONES, SPELLING, phonemes, spell
from asr.train.tasks import KeywordTask


def test_spell_keeps_letters_and_apostrophes():
    assert "".join(SPELLING[i] for i in spell("Don't-Stop")) == "don'tstop"


def test_batches_spell_the_word_of_each_clip(tmp_path, commands_corpus, commands_keywords):
    config = load_config(
        "kws-tiny",
        tiny_kws_overrides(commands_corpus, commands_keywords) | {"train.spell_ctc": 0.5, "train.ctc_units": "letters"},
    )
    task = KeywordTask(config, tmp_path)
    batches = task.batches(0, 1)
    features, labels, spelled, lengths = batches[0]
    assert len(features) == len(labels) == len(lengths) and int(lengths.sum()) == len(spelled)
    indices = batches.global_indices(0)
    words = iter("".join(SPELLING[i] for i in ids) for ids in torch.split(spelled, lengths.tolist()))
    for index, label, word in zip(indices, labels.tolist(), words, strict=True):
        if index < len(task.train_set.items):
            assert word == task.train_set.items[index][0].parent.name
            if label >= 2:
                assert word == task.labels[label]
        else:
            assert label == 0 and word == ""  # _silence_ spells nothing


def test_spelling_loss_trains_the_encoder_and_is_not_deployed(tmp_path, commands_corpus, commands_keywords):
    overrides = tiny_kws_overrides(commands_corpus, commands_keywords)
    with_speller = load_config("kws-tiny", overrides | {"train.spell_ctc": 0.5, "train.ctc_units": "letters"})
    task = KeywordTask(with_speller, tmp_path)
    torch.manual_seed(0)
    model = build_model(with_speller, task.num_outputs)
    loss = task.loss(model, task.batches(0, 1)[0], torch.device("cpu"))
    assert torch.isfinite(loss)
    loss.backward()
    assert model.speller.weight.grad.abs().sum() > 0
    assert model.encoder.blocks[0].conv_in.weight.grad.abs().sum() > 0
    plain = build_model(load_config("kws-tiny", overrides | {"train.spell_ctc": 0.0}), task.num_outputs)
    assert plain.speller is None
    assert parameter_report(model)["unique_parameters"] == parameter_report(plain)["unique_parameters"]
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 97, 40)).shape == (1, task.num_outputs)  # what is exported: logits only


def test_phones_name_the_sounds_not_the_letters():
    ids = phonemes(["no", "know", "marvin", "martin", "up"])
    assert ids["no"] == ids["know"]  # homophones: one target
    assert len(ids["marvin"]) == len(ids["martin"]) == 5
    assert sum(a != b for a, b in zip(ids["marvin"], ids["martin"], strict=True)) == 1  # /v/ against /t/
    assert [PHONES[i] for i in ids["up"]] == ["V", "p"]


def test_phone_loss_trains_with_a_phone_sized_speller(tmp_path, commands_corpus, commands_keywords):
    overrides = tiny_kws_overrides(commands_corpus, commands_keywords)
    config = load_config("kws-tiny", overrides | {"train.spell_ctc": 0.5, "train.ctc_units": "phones"})
    task = KeywordTask(config, tmp_path)
    batches = task.batches(0, 1)
    _, _, targets, lengths = batches[0]
    said = phonemes([p.parent.name for p, _ in task.train_set.items])
    for index, ids in zip(batches.global_indices(0), torch.split(targets, lengths.tolist()), strict=True):
        word = task.train_set.items[index][0].parent.name if index < len(task.train_set.items) else ""
        assert ids.tolist() == said.get(word, [])
    model = build_model(config, task.num_outputs)
    assert model.speller.out_features == len(PHONES) + 1
    loss = task.loss(model, batches[0], torch.device("cpu"))
    loss.backward()
    assert torch.isfinite(loss) and model.speller.weight.grad.abs().sum() > 0
