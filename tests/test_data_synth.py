"""The generated corpora: real layouts, donor-disjoint splits, held-out words, caching, resuming, determinism."""

import dataclasses
import json
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from asr.data import synth
from asr.data.engines import EngineMissing, check_engine
from asr.data.grammar import spoken_number, templates, vocabulary
from asr.data.librispeech import LibriSpeech
from asr.data.recipe import DATA_DIR, load_recipe
from asr.errors import InputError

NAME = re.compile(r"^[0-9a-f]{8}_nohash_\d+\.wav$")


def _voices(root):
    return {row["speaker"]: row for row in json.loads((root / "voices.json").read_text())}


def test_commands_layout(commands_corpus, commands_keywords):
    for word in commands_keywords:
        clips = sorted((commands_corpus / word).glob("*.wav"))
        assert clips and all(NAME.match(p.name) for p in clips)
    info = sf.info(str(next((commands_corpus / "marvin").glob("*.wav"))))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
    for split in ("validation", "testing"):
        listed = (commands_corpus / f"{split}_list.txt").read_text().split()
        assert listed and all((commands_corpus / rel).is_file() for rel in listed)
    noise = sorted((commands_corpus / "_background_noise_").glob("*.wav"))
    assert {p.stem for p in noise} >= {"white_noise", "pink_noise", "babble", "hum_50hz"}
    assert all(sf.info(str(p)).duration >= 5 for p in noise)


def test_clips_are_speech_not_silence(commands_corpus):
    audio, _ = sf.read(str(next((commands_corpus / "yes").glob("*.wav"))), dtype="float32")
    frames = audio[: 16000 // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames**2).mean(axis=1))
    assert 0.05 < np.abs(audio).max() <= 1.0
    assert rms.max() > 30 * np.median(rms)  # a word over a faint floor
    assert (audio != 0).mean() > 0.9  # a noise floor: never digital silence


def test_splits_are_disjoint_by_donor(commands_corpus, sentences_corpus):
    for root in (commands_corpus, sentences_corpus):
        donors = {}
        for row in _voices(root).values():
            donors.setdefault(row["donor"], set()).add(row["split"])
        assert all(len(splits) == 1 for splits in donors.values()), donors
        assert {row["split"] for row in _voices(root).values()} == {"train", "validation", "testing"}
    split_of = {row["speaker"]: row["split"] for row in _voices(commands_corpus).values()}
    for split in ("validation", "testing"):
        for rel in (commands_corpus / f"{split}_list.txt").read_text().split():
            assert split_of[rel.split("/")[1].split("_nohash_")[0]] == split


def test_default_recipe_holds_out_donors():
    recipe = load_recipe()
    speakers = recipe.scale("default").speakers
    by_split = {s: {sp for sp in speakers if sp.split == s} for s in ("train", "validation", "testing")}
    train_donors = {s.donor for s in by_split["train"]}
    assert not train_donors & {s.donor for s in by_split["validation"] | by_split["testing"]}
    recorded = {s.donor for s in by_split["testing"] if s.engine not in ("espeak-ng", "kokoro")}
    assert recorded == {"kal", "slt"}  # people never heard in training, through every engine that has them
    assert {s.engine for s in by_split["testing"]} == {"flite", "festival", "kokoro"}  # + held-out Kokoro voices
    scale = recipe.scale("default")
    assert len(scale.unknown_words) >= 600 and len(scale.heldout_words) >= 30
    assert not set(scale.heldout_words) & set(scale.unknown_words + scale.keywords)


def test_heldout_words_only_in_testing(commands_corpus):
    scale = load_recipe().scale("tiny")
    testing = (commands_corpus / "testing_list.txt").read_text().split()
    everything = {f"{p.parent.name}/{p.name}" for p in commands_corpus.glob("*/*.wav") if p.parent.name[0] != "_"}
    for word in scale.heldout_words:
        clips = {rel for rel in everything if rel.startswith(word + "/")}
        assert clips and clips <= set(testing)


def test_sentences_layout(sentences_corpus):
    for split in ("train-clean-100", "dev-clean", "test-clean"):
        flacs = sorted((sentences_corpus / split).glob("*/*/*.flac"))
        assert flacs
        for flac in flacs:
            spk, chapter = flac.parts[-3:-1]
            assert re.match(rf"^{spk}-{chapter}-\d{{4}}$", flac.stem)
        trans = next((sentences_corpus / split).glob("*/*/*.trans.txt")).read_text().splitlines()
        assert all(re.match(r"^\d+-\d+-\d{4} [A-Z' ]+$", line) for line in trans)
    rows = [line for line in (sentences_corpus / "SPEAKERS.TXT").read_text().splitlines() if not line.startswith(";")]
    fields = [[f.strip() for f in row.split("|")] for row in rows]
    assert all(len(f) == 5 and f[1] in "MF" and float(f[3]) > 0 for f in fields)
    assert sf.info(str(flacs[0])).samplerate == 16000


def test_heldout_templates_only_in_test(sentences_corpus):
    grammar = load_recipe().grammar
    starts = [t.split("{")[0].strip().upper() for t in templates(grammar, heldout=True)]
    for split in ("train-clean-100", "dev-clean"):
        for trans in (sentences_corpus / split).glob("*/*/*.trans.txt"):
            for line in trans.read_text().splitlines():
                text = line.split(" ", 1)[1]
                assert not any(text.startswith(s) for s in starts if len(s) > 8), text


def test_reading_sentences_are_for_training_only_and_leave_the_other_clips_as_they_were():
    """Training readers (Kokoro's training voices among them) also read sentences of common words in random order;
    dev and test read only grammar sentences, and every grammar clip keeps its plan."""
    recipe = load_recipe()
    scale = recipe.scale("default")
    jobs = synth.plan_sentences(recipe, scale, 0)
    without = synth.plan_sentences(recipe, dataclasses.replace(scale, reading=0, kokoro={}), 0)
    assert set(without) < set(jobs)  # reading adds clips (and Kokoro's readers); it changes none
    extra = [j for j in jobs if j not in set(without)]
    assert {j.speaker.split for j in extra} == {"train"}
    assert {j.speaker.engine for j in extra} >= {"kokoro", "flite", "espeak-ng"}
    grammar_texts = {j.utterance.text for j in without}
    reading = [
        j.utterance.text for j in extra if j.speaker.engine != "kokoro" and j.utterance.text not in grammar_texts
    ]
    per_reader = scale.reading * len({j.speaker.key for j in without if j.speaker.split == "train"})
    assert len(reading) > 0.95 * per_reader
    allowed = set(recipe.words["common"] + recipe.words["dictionary"]) | set(vocabulary(recipe.grammar))
    words = {w for text in reading for w in text.split()}
    assert words <= allowed
    assert {"could", "would", "keep"} & words  # common words the held-out templates use: general English, not theirs
    assert not {"could", "would", "keep"} & set(vocabulary(recipe.grammar))


def test_spoken_numbers():
    assert [spoken_number(n) for n in (0, 7, 19, 20, 42, 100, 315)] == [
        "zero", "seven", "nineteen", "twenty", "forty two", "one hundred", "three hundred and fifteen"
    ]  # fmt: skip


def test_second_run_is_cached(commands_corpus, generated_dir):
    before = (commands_corpus / "SYNTH.json").stat().st_mtime_ns
    start = time.time()
    assert synth.build_corpus("commands", generated_dir, scale="tiny", seed=0) == commands_corpus
    assert time.time() - start < 5
    assert (commands_corpus / "SYNTH.json").stat().st_mtime_ns == before


def test_plan_is_deterministic_per_seed():
    recipe = load_recipe()
    scale = recipe.scale("tiny")
    a, b = synth.plan_commands(recipe, scale, 0), synth.plan_commands(recipe, scale, 0)
    assert a == b
    assert a != synth.plan_commands(recipe, scale, 1)


def test_killed_run_resumes_to_the_same_corpus(tmp_path, sentences_corpus, monkeypatch):
    """A run killed mid-way leaves no corpus that looks complete; the next run finishes it, byte for byte equal
    to an uninterrupted run (each clip depends only on its plan)."""
    real = synth.run_batch
    calls = []

    def dies_after_one(*args):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(synth, "run_batch", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        synth.build_corpus("sentences", tmp_path, scale="tiny", seed=0, jobs=1)
    assert not (tmp_path / "sentences").exists()
    assert list((tmp_path / ".sentences.partial").rglob("*.flac"))
    monkeypatch.setattr(synth, "run_batch", real)
    root = synth.build_corpus("sentences", tmp_path, scale="tiny", seed=0, jobs=1)
    assert not (tmp_path / ".sentences.partial").exists()
    ours = sorted(p.relative_to(root) for p in root.rglob("*.flac"))
    assert ours == sorted(p.relative_to(sentences_corpus) for p in sentences_corpus.rglob("*.flac"))
    for rel in ours:
        assert (root / rel).read_bytes() == (sentences_corpus / rel).read_bytes(), rel
    assert (root / "SPEAKERS.TXT").read_text() == (sentences_corpus / "SPEAKERS.TXT").read_text()


def test_held_out_sentences_alone_are_the_same_files_and_a_whole_corpus_is_kept(
    tmp_path, sentences_corpus, generated_dir
):
    """`make demo` builds only the held-out sentences (its streams' background speech): the same files as in the
    whole corpus, no training speaker; asked of a directory that holds the whole corpus, it keeps it."""
    root = synth.build_corpus("sentences", tmp_path, scale="tiny", seed=0, jobs=2, splits=("validation", "testing"))
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["dev-clean", "test-clean"]
    ours = sorted(p.relative_to(root) for p in root.rglob("*.flac"))
    assert ours and ours == sorted(
        p.relative_to(sentences_corpus) for p in sentences_corpus.rglob("*.flac") if "train" not in p.parts[-4]
    )
    for rel in ours:
        assert (root / rel).read_bytes() == (sentences_corpus / rel).read_bytes(), rel
    assert {row["split"] for row in json.loads((root / "voices.json").read_text())} == {"validation", "testing"}
    with pytest.raises(FileNotFoundError, match="asr data synth --corpus sentences"):
        LibriSpeech(root, "train-clean-100")
    before = (sentences_corpus / "SYNTH.json").read_text()
    assert synth.build_corpus("sentences", generated_dir, scale="tiny", splits=("testing",)) == sentences_corpus
    assert (sentences_corpus / "SYNTH.json").read_text() == before
    with pytest.raises(InputError, match="built whole"):
        synth.build_corpus("commands", tmp_path, scale="tiny", splits=("testing",))
    with pytest.raises(InputError, match="splits must be"):
        synth.build_corpus("sentences", tmp_path, scale="tiny", splits=("test",))


def test_rebuild_over_a_linked_corpus_leaves_the_linked_one(tmp_path, sentences_corpus):
    """data/generated/sentences may be a link to a corpus on another disk: a rebuild (another seed) replaces the
    link with the new corpus and leaves the one it pointed to whole."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(sentences_corpus, elsewhere)
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "sentences").symlink_to(elsewhere)
    root = synth.build_corpus("sentences", tmp_path / "gen", scale="tiny", seed=1, jobs=2)
    assert not root.is_symlink() and json.loads((root / "SYNTH.json").read_text())["key"]["seed"] == 1
    assert json.loads((elsewhere / "SYNTH.json").read_text())["key"]["seed"] == 0
    assert sorted(elsewhere.rglob("*.flac")) and not (tmp_path / "gen" / ".sentences.old").exists()


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    (tmp_path / "commands").mkdir()
    with pytest.raises(FileExistsError, match="not made by"):
        synth.build_corpus("commands", tmp_path, scale="tiny")


def test_missing_synthesizer_names_the_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EngineMissing, match="apt-get install festival"):
        check_engine("festival", load_recipe().apt_package("festival"))


def test_rhvoice_not_set_up_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr("asr.data.engines.RHVOICE_HOME", tmp_path)
    with pytest.raises(EngineMissing, match="tools/setup.sh"):
        check_engine("rhvoice", load_recipe().apt_package("rhvoice"))


def test_rhvoice_retries_a_failed_wine_start(monkeypatch):
    """wine once failed to start, silently, under two synthesis workers: the batch is tried again."""
    real_run, calls = subprocess.run, []

    def flaky_run(cmd, **kwargs):
        calls.append(cmd)
        if len(calls) == 1:
            return subprocess.CompletedProcess(cmd, 1, b"", b"")
        return real_run(cmd, **kwargs)

    monkeypatch.setattr("asr.data.engines.subprocess.run", flaky_run)
    recipe = load_recipe()
    clb = next(s for s in recipe.scale("default").speakers if s.voice_id == "rhvoice:clb")
    (audio,) = synth.speak(clb, [synth.utterance(recipe, clb, "yes", np.random.default_rng(0))], "")
    assert len(calls) == 2 and np.abs(audio).max() > 0.05


def _f0_hz(audio: np.ndarray) -> float:
    """Median pitch of the voiced part (torchaudio's autocorrelation estimate)."""
    import torch
    import torchaudio.functional as F

    pitch = F.detect_pitch_frequency(torch.from_numpy(synth.render.trim(audio))[None], 16000, freq_low=70)
    return float(pitch.median())


def test_rhvoice_woman_speaks_at_the_pitch_and_tempo_asked():
    """The CMU ARCTIC voices through RHVoice under wine: clb is a woman (no simulated higher speakers made from
    her), and the f0 and stretch each speaker draws reach the audio."""
    recipe = load_recipe()
    speakers = recipe.scale("default").speakers
    clb = [s for s in speakers if s.voice_id == "rhvoice:clb"]
    assert clb and all(s.formant == 1.0 and s.split == "train" for s in clb)
    assert any(s.formant > 1 for s in speakers if s.voice_id == "rhvoice:bdl")
    low, high = (dataclasses.replace(clb[0], f0=f0) for f0 in (150.0, 260.0))
    u = synth.utterance(recipe, low, "seven", np.random.default_rng(0))
    slow, fast = (dataclasses.replace(u, stretch=s) for s in (1.3, 0.8))
    a_low, a_high = synth.speak(low, [slow, dataclasses.replace(fast, f0=260.0)], recipe.apt_package("rhvoice"))
    assert 1.3 < _f0_hz(a_high) / _f0_hz(a_low) < 2.2  # asked: 1.73
    assert 1.3 < len(synth.render.trim(a_low)) / len(synth.render.trim(a_high)) < 2.0  # asked: 1.63


def _centroid_hz(audio: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(audio)) ** 2
    return float((np.fft.rfftfreq(len(audio), 1 / 16000) * power).sum() / power.sum())


def test_warped_speaker_has_higher_formants_and_the_same_duration():
    """A simulated shorter vocal tract: the spectrum moves up (about by the factor); the word keeps its length."""
    recipe = load_recipe()
    warped = next(s for s in recipe.scale("tiny").speakers if s.key.startswith("flite:awb#w"))
    assert warped.split == "train" and warped.formant > 1.1 and warped.donor == "awb"
    unwarped = dataclasses.replace(warped, formant=1.0)  # the same voice and f0, no warp
    texts = ["marvin", "seven", "house"]
    audios = {  # the same seed per text: both speakers draw the same tempo and f0 jitter
        s.formant: synth.speak(
            s,
            [synth.utterance(recipe, s, t, np.random.default_rng(i)) for i, t in enumerate(texts)],
            recipe.apt_package("flite"),
        )
        for s in (unwarped, warped)
    }
    ratios = []
    for a, b in zip(audios[1.0], audios[warped.formant], strict=True):
        ratios.append(_centroid_hz(synth.render.trim(b)) / _centroid_hz(synth.render.trim(a)))
        assert abs(len(b) / len(a) - 1) < 0.02
    assert 1.08 < np.exp(np.mean(np.log(ratios))) < 1.6


def test_espeak_ng_voice_with_a_donor_is_a_recorded_voice_and_warps_keep_word_length():
    """An espeak-ng voice listed in [donors] (MBROLA's, an option) gets a recorded voice's speakers: vocal-tract
    presets and no variants ("mb-us1+f2" would be espeak-ng's own voice). A warped espeak-ng speaker speaks slower
    by its factor before resampling, so the word keeps its length."""
    recipe = load_recipe()
    tiny = recipe.raw["scale"]["tiny"]
    tiny["voices"]["train"].append("espeak-ng:mb-us1")
    tiny["speakers_per_voice"] = 6
    recipe.raw["donors"]["espeak-ng:mb-us1"] = "us1"  # as data/README.md says to add it
    speakers = recipe.scale("tiny").speakers
    us1 = [s for s in speakers if s.donor == "us1"]
    assert len(us1) == 6 and not any(s.variant for s in us1) and len({s.formant for s in us1}) == 6
    plain = next(s for s in speakers if s.engine == "espeak-ng")  # MBROLA itself is not in Debian main
    warped = dataclasses.replace(plain, formant=1.17)
    for i, text in enumerate(["marvin", "seven", "house"]):
        a, b = (
            synth.render.trim(synth.speak(s, [synth.utterance(recipe, s, text, np.random.default_rng(i))], "")[0])
            for s in (plain, warped)
        )
        assert abs(len(b) / len(a) - 1) < 0.05


def test_accented_voice_says_keywords_respelled_and_reads_no_sentences():
    """A foreign training voice (a Finnish woman) says keywords from its language's respelling, reads unknown words
    as written, gets vocal-tract presets for speakers (festival cannot set its pitch) and reads no sentences."""
    recipe = load_recipe()
    tiny = recipe.raw["scale"]["tiny"]
    tiny["voices"]["train"].append("festival:suo_fi_lj_diphone")  # an option: in no scale's split by default
    tiny["speakers_per_voice"] = 6
    scale = recipe.scale("tiny")
    lj = [s for s in scale.speakers if s.donor == "lj"]
    assert len(lj) == 6 and all(s.split == "train" and s.accent == "finnish" for s in lj)
    assert len({s.formant for s in lj}) == 6  # tract presets, not six identical speakers
    jobs = [j for j in synth.plan_commands(recipe, scale, 0) if j.speaker in lj]
    said = {j.path.split("/")[0]: j.utterance.text for j in jobs}
    assert said["yes"] == recipe.raw["respell"]["finnish"]["yes"] != "yes"
    assert all(said[w] == w for w in said if w not in scale.keywords)
    assert not any(j.speaker.accent for j in synth.plan_sentences(recipe, scale, 0))
    yes = next(j for j in jobs if j.path.startswith("yes/"))
    (audio,) = synth.speak(yes.speaker, [yes.utterance], recipe.apt_package("festival"))
    assert 0.2 < len(synth.render.trim(audio)) / 16000 < 1.0  # one short word, not silence


def test_recipe_rejects_a_respelling_without_every_keyword(tmp_path):
    shutil.copytree(DATA_DIR / "words", tmp_path / "words")
    shutil.copy(DATA_DIR / "grammar.toml", tmp_path)
    recipe = (DATA_DIR / "recipe.toml").read_text()
    broken = recipe.replace("[respell.czech]\nmarvin =", "[respell.czech]\nmarvn =", 1)
    assert broken != recipe
    (tmp_path / "recipe.toml").write_text(broken)
    with pytest.raises(ValueError, match=r"respell\.czech.*marvin"):
        load_recipe(tmp_path)


@pytest.mark.parametrize("accent", ["en-us", "en-gb"])
def test_no_unknown_word_sounds_exactly_like_a_keyword(accent):
    """A homophone labelled unknown ("know" for "no") teaches the model to miss the keyword: espeak-ng's
    phonemes (stress marks aside) of every unknown and held-out word must differ from every keyword's."""
    recipe = load_recipe()
    words = recipe.words["keywords"] + recipe.words["near_miss"] + recipe.words["common"]
    words += recipe.words["dictionary"] + recipe.words["heldout"]
    out = subprocess.run(
        ["espeak-ng", "-q", "-x", "-v", accent], input=".\n".join(words) + ".\n", capture_output=True, text=True
    ).stdout
    phonemes = [re.sub(r"[',]", "", line.strip()) for line in out.splitlines() if line.strip()]
    assert len(phonemes) == len(words)
    keyword_of = dict(zip(phonemes, recipe.words["keywords"], strict=False))  # keywords come first
    clashes = [(w, keyword_of[p]) for w, p in zip(words, phonemes, strict=True) if keyword_of.get(p, w) != w]
    assert not clashes
