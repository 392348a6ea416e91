"""Speaker and channel augmentation: each changes what it claims to, keeps what it must, and replays from its seed."""

from pathlib import Path

import numpy as np

from asr.data.noise import NoisySplit, active_rms
from asr.train.augment import random_eq, reverberate, vtlp_matrix

SR = 16000


def _vowel(f0: float = 120.0, formant: float = 700.0) -> np.ndarray:
    """A 0.4 s buzz through one resonance, in the middle of a 1 s clip."""
    t = np.arange(int(0.4 * SR)) / SR
    harmonics = sum(np.sin(2 * np.pi * f0 * k * t) * np.exp(-(((f0 * k - formant) / 300.0) ** 2)) for k in range(1, 60))
    clip = np.zeros(SR, dtype=np.float32)
    clip[6000 : 6000 + len(t)] = 0.3 * harmonics / np.abs(harmonics).max()
    return clip


def test_random_eq_changes_the_spectrum_keeps_level_and_replays():
    clip = _vowel()
    out = random_eq(clip, np.random.default_rng(3), SR)
    assert out.shape == clip.shape and out.dtype == np.float32
    assert np.isclose(np.sqrt(np.mean(out**2)), np.sqrt(np.mean(clip**2)), rtol=1e-3)
    spectra = [np.abs(np.fft.rfft(x)) + 1e-9 for x in (clip, out)]
    assert np.abs(20 * np.log10(spectra[1] / spectra[0]))[200:6000].max() > 3.0  # a real change of colour, in dB
    np.testing.assert_array_equal(out, random_eq(clip, np.random.default_rng(3), SR))


def test_reverberation_adds_a_decaying_tail_after_the_word():
    clip = _vowel()
    out = reverberate(clip, np.random.default_rng(1), SR)
    end = 6000 + int(0.4 * SR)
    assert out.shape == clip.shape
    assert np.abs(clip[end + 100 : end + 800]).max() == 0.0
    assert np.abs(out[end + 100 : end + 800]).max() > 1e-3  # the room keeps sounding
    before = np.sqrt(np.mean(out[end + 100 : end + 900] ** 2))
    later = np.sqrt(np.mean(out[end + 3000 : end + 3800] ** 2))
    assert later < before


def test_vtlp_moves_a_formant_up_by_the_factor():
    identity = vtlp_matrix(1.0, 40, 20.0, 7600.0)
    np.testing.assert_allclose(identity, np.eye(40), atol=1e-6)
    from asr.features import DEFAULT_SPEC, log_mel

    frames = log_mel(_vowel(formant=1000.0), DEFAULT_SPEC)
    peak = int(frames[45].argmax())
    warped = frames @ vtlp_matrix(1.2, 40, DEFAULT_SPEC.f_min, DEFAULT_SPEC.f_max).T
    assert int(warped[45].argmax()) > peak


class _Split:
    """A two-clip keyword split with one background-noise file: the interface NoisySplit wraps."""

    root = None
    items = [("a", 2), ("b", 3)]

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return _vowel(formant=600.0 + 400 * i), self.items[i][1]

    def background_noise(self):
        return [np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32)]


def test_noisy_split_mixes_noise_at_the_asked_snr_and_repeats_it():
    noisy = NoisySplit(_Split(), snr_db=(10.0, 10.0))
    wave, label = noisy[1]
    clean, _ = _Split()[1]
    assert label == 3 and noisy.items == _Split.items
    snr = 20 * np.log10(active_rms(clean) / np.sqrt(np.mean((wave - clean) ** 2)))
    assert abs(snr - 10.0) < 0.5
    np.testing.assert_array_equal(wave, noisy[1][0])


class _Word:
    """One keyword clip, no background noise: the interface KeywordBatches reads."""

    labels = ["_silence_", "_unknown_", "up"]
    items = [(Path("up/a.wav"), 2)]

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return _vowel(f0=150.0, formant=1000.0), 2

    def background_noise(self):
        return []


def _active_frames(frames: np.ndarray) -> np.ndarray:
    energy = frames.max(axis=1)
    return frames[energy > energy.max() - 2.0]


def test_sentence_examples_end_in_up_to_the_set_digital_silence(sentences_corpus):
    """train.silence_pad_s appends 0..N s of digital silence to each training utterance: the frames the device's
    last window is padded with (asr.runtime.ctc_stream.silence_feature), so the model learns to read words before it."""
    import dataclasses

    from asr.config import TrainConfig
    from asr.data.librispeech import LibriSpeech
    from asr.features import FeatureSpec
    from asr.runtime.ctc_stream import silence_feature
    from asr.train.batches import SentenceBatches

    class Letters:  # the tokenizer is not what is tested
        def encode(self, text: str) -> list[int]:
            return [ord(c) for c in text]

    spec, source = FeatureSpec(), LibriSpeech(sentences_corpus, "train-clean-100")
    plain = TrainConfig(speed_perturb=(1.0, 1.0), spec_time_mask=0, spec_freq_mask=0)
    padded = dataclasses.replace(plain, silence_pad_s=1.0)
    for index in range(4):
        base, ids = SentenceBatches(source, Letters(), spec, plain, 0).example(index, np.random.default_rng(index))
        feats, same = SentenceBatches(source, Letters(), spec, padded, 0).example(index, np.random.default_rng(index))
        extra = len(feats) - len(base)
        assert same == ids and 0 <= extra <= 101
        np.testing.assert_allclose(feats[: len(base) - 4].numpy(), base[: len(base) - 4].numpy(), atol=1e-5)
        np.testing.assert_allclose(feats[len(base) + 4 :].numpy(), silence_feature(spec), atol=1e-5)
    batches = SentenceBatches(source, Letters(), spec, padded, 0)
    lengths = {len(batches.example(0, np.random.default_rng(seed))[0]) for seed in range(6)}
    assert len(lengths) > 3  # a random amount each time
