"""Loaders on the generated trees and on hand-built trees shaped like the real corpora, with their errors."""

import shutil

import numpy as np
import pytest

from asr.audio import read_audio, write_audio
from asr.data.librispeech import LibriSpeech
from asr.data.speech_commands import SpeechCommands

TWELVE = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


@pytest.fixture(scope="module")
def real_commands(tmp_path_factory, commands_corpus):
    """A Speech Commands v2 tree as Google ships it: 10 keyword folders plus other words, official list files,
    README/LICENSE files, a clip shorter than 1 s, background noise with a README. Audio: generated speech."""
    root = tmp_path_factory.mktemp("speech_commands_v2")
    donors = sorted(p for p in commands_corpus.glob("*/*.wav") if p.parent.name[0] != "_")
    speakers = ["0a7c2a8d", "0b09edd3", "1a892463"]  # real-looking ids: one per split
    rels = {}
    for i, word in enumerate([*TWELVE, "bed", "marvin", "sheila"]):
        for j, spk in enumerate(speakers):
            rel = f"{word}/{spk}_nohash_0.wav"
            audio = read_audio(donors[(3 * i + j) % len(donors)])
            write_audio(root / rel, audio[:12000] if (i, j) == (0, 0) else audio)
            rels.setdefault(spk, []).append(rel)
    (root / "validation_list.txt").write_text("\n".join(rels[speakers[1]]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(rels[speakers[2]]) + "\n")
    (root / "README.md").write_text("Speech Commands\n")
    (root / "LICENSE").write_text("CC BY 4.0\n")
    shutil.copytree(commands_corpus / "_background_noise_", root / "_background_noise_")
    (root / "_background_noise_" / "README.md").write_text("noise\n")
    return root


def test_twelve_class_task_on_a_real_layout(real_commands):
    train = SpeechCommands(real_commands, "train", TWELVE)
    assert train.labels == ["_silence_", "_unknown_", *TWELVE]
    assert len(train.items) == 13 and train.num_silence == 1 and len(train) == 14
    assert sorted(label for _, label in train.items) == [1, 1, 1, *range(2, 12)]
    assert {train.speaker_of(p) for p, _ in train.items} == {"0a7c2a8d"}
    yes = next(i for i, (p, _) in enumerate(train.items) if p.parent.name == "yes")
    wave, label = train[yes]  # the 0.75 s clip, centred in the window
    assert wave.shape == (16000,) and wave.dtype == np.float32 and train.labels[label] == "yes"
    assert np.all(wave[:2000] == 0) and np.all(wave[14000:] == 0) and np.any(wave[2000:2100] != 0)
    test = SpeechCommands(real_commands, "testing", TWELVE)
    assert {test.speaker_of(p) for p, _ in test.items} == {"1a892463"}
    assert len(test.background_noise()) >= 5 and all(n.dtype == np.float32 for n in test.background_noise())


def test_generated_corpus_splits_follow_the_lists(commands_corpus, commands_keywords):
    val = SpeechCommands(commands_corpus, "validation", commands_keywords)
    listed = set((commands_corpus / "validation_list.txt").read_text().split())
    assert {f"{p.parent.name}/{p.name}" for p, _ in val.items} == listed
    speakers = {
        split: {
            SpeechCommands.speaker_of(p) for p, _ in SpeechCommands(commands_corpus, split, commands_keywords).items
        }
        for split in ("train", "validation", "testing")
    }
    assert not speakers["train"] & speakers["validation"] and not speakers["train"] & speakers["testing"]
    labels = [label for _, label in val.items]
    assert set(labels) == set(range(1, 2 + len(commands_keywords)))  # every keyword and unknowns


def test_silence_is_noise_and_fixed_for_eval_splits(commands_corpus, commands_keywords):
    val = SpeechCommands(commands_corpus, "validation", commands_keywords, silence_fraction=0.5)
    i = len(val.items)
    (a, la), (b, _) = val[i], val[i]
    assert la == 0 and a.shape == (16000,) and np.array_equal(a, b)
    other = SpeechCommands(commands_corpus, "validation", commands_keywords, silence_fraction=0.5)
    assert np.array_equal(other[i][0], a)
    train = SpeechCommands(commands_corpus, "train", commands_keywords, silence_fraction=0.5)
    crops = [train[len(train.items)][0] for _ in range(3)]
    assert not np.array_equal(crops[0], crops[1]) or not np.array_equal(crops[1], crops[2])


def test_unknown_fraction_keeps_a_seeded_subset(commands_corpus, commands_keywords):
    full = SpeechCommands(commands_corpus, "train", commands_keywords)
    half = SpeechCommands(commands_corpus, "train", commands_keywords, unknown_fraction=0.5, seed=3)
    again = SpeechCommands(commands_corpus, "train", commands_keywords, unknown_fraction=0.5, seed=3)
    n_unknown = sum(label == 1 for _, label in full.items)
    kept = [p for p, label in half.items if label == 1]
    assert 0 < len(kept) < n_unknown and kept == [p for p, label in again.items if label == 1]
    assert {p.parent.name for p in kept} == {p.parent.name for p, label in full.items if label == 1}  # every word
    assert not [
        p
        for p, label in SpeechCommands(commands_corpus, "train", commands_keywords, unknown_fraction=0).items
        if label == 1
    ]
    assert [x for x in full.items if x[1] > 1] == [x for x in half.items if x[1] > 1]


def test_speech_commands_errors(tmp_path, real_commands):
    with pytest.raises(FileNotFoundError, match="no such Speech Commands directory"):
        SpeechCommands(tmp_path / "nope", "train", TWELVE)
    with pytest.raises(FileNotFoundError, match=r"no folder for keyword\(s\) \['wow'\]"):
        SpeechCommands(real_commands, "train", ["yes", "wow"])
    with pytest.raises(ValueError, match="split must be one of"):
        SpeechCommands(real_commands, "dev", TWELVE)
    broken = tmp_path / "broken"
    shutil.copytree(real_commands, broken)
    (broken / "testing_list.txt").unlink()
    with pytest.raises(FileNotFoundError, match="testing_list.txt: missing split list"):
        SpeechCommands(broken, "train", TWELVE)


@pytest.fixture(scope="module")
def real_librispeech(tmp_path_factory, sentences_corpus):
    """A LibriSpeech root as OpenSLR ships it (LibriSpeech/dev-clean/84/121123/84-121123-0000.flac, ...)."""
    root = tmp_path_factory.mktemp("LibriSpeech")
    flacs = sorted(sentences_corpus.glob("dev-clean/*/*/*.flac"))[:3]
    lines = []
    for i, flac in enumerate(flacs):
        utt = f"84-121123-{i:04d}"
        write_audio(root / "dev-clean/84/121123" / f"{utt}.flac", read_audio(flac))
        lines.append(f"{utt} GO DO YOU HEAR")
    (root / "dev-clean/84/121123/84-121123.trans.txt").write_text("\n".join(lines) + "\n")
    (root / "SPEAKERS.TXT").write_text(
        ";ID  |SEX| SUBSET           |MINUTES| NAME\n84   | F | dev-clean        |  8.02 | C\n"
    )
    return root


def test_librispeech_real_layout(real_librispeech):
    ds = LibriSpeech(real_librispeech, "dev-clean")
    assert len(ds) == 3
    wave, text, utt = ds[1]
    assert utt == "84-121123-0001" and text == "GO DO YOU HEAR" and wave.dtype == np.float32 and wave.ndim == 1
    assert LibriSpeech.speaker_of(utt) == "84"


def test_librispeech_generated(sentences_corpus):
    for split in ("train-clean-100", "dev-clean", "test-clean"):
        ds = LibriSpeech(sentences_corpus, split)
        wave, text, utt = ds[0]
        assert len(wave) > 8000 and text == text.upper() and utt == ds.items[0][2]
        assert [u for _, _, u in ds.items] == sorted(u for _, _, u in ds.items)


def test_librispeech_errors(tmp_path, real_librispeech):
    with pytest.raises(FileNotFoundError, match="no such LibriSpeech split directory"):
        LibriSpeech(real_librispeech, "train-other-500")
    tree = tmp_path / "ls"
    shutil.copytree(real_librispeech, tree)
    trans = tree / "dev-clean/84/121123/84-121123.trans.txt"
    trans.write_text("\n".join(trans.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(ValueError, match="84-121123-0002.flac: no transcript line"):
        LibriSpeech(tree, "dev-clean")
    trans.write_text(trans.read_text() + "84-121123-0002 A\n84-121123-0009 NO AUDIO\n")
    with pytest.raises(FileNotFoundError, match="84-121123-0009.flac: audio missing"):
        LibriSpeech(tree, "dev-clean")
    trans.unlink()
    with pytest.raises(FileNotFoundError, match="84-121123.trans.txt: missing transcript file"):
        LibriSpeech(tree, "dev-clean")
