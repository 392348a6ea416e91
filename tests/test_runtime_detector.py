"""The streaming detector: incremental features, sliding windows, decisions, and detection on real audio."""

from pathlib import Path

import numpy as np
import pytest

from asr.audio import read_audio
from asr.data.stream import make_stream
from asr.features import DEFAULT_SPEC, log_mel
from asr.runtime.bundle import Manifest
from asr.runtime.detector import Decider, Detector, StreamingFrontend, keywords
from asr.runtime.spotter import KeywordSpotter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speech(commands_corpus) -> np.ndarray:
    clips = [p for p in sorted(commands_corpus.rglob("*.wav")) if not p.parent.name.startswith("_")][:5]
    return np.concatenate([read_audio(p) for p in clips])


def test_streaming_features_equal_whole_clip_features(speech):
    rng = np.random.default_rng(0)
    frontend, parts, pos = StreamingFrontend(DEFAULT_SPEC), [], 0
    while pos < len(speech):
        n = int(rng.choice([1, 7, 160, 511, 513, 1600, 4000]))
        parts.append(frontend.push(speech[pos : pos + n]))
        pos += n
    streamed = np.concatenate(parts)
    whole = log_mel(speech)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_each_window_is_the_last_second_of_features_every_hop(speech):
    seen = []

    def model(features):
        seen.append(features.copy())
        return np.array([0.0, 0.0, 0.0])

    detector = Detector(model, ["_silence_", "_unknown_", "yes"], DEFAULT_SPEC, hop_s=0.1)
    times = [t for chunk in np.array_split(speech, 37) for t, _ in detector.score(chunk)]
    whole = log_mel(speech)
    window = DEFAULT_SPEC.num_frames(DEFAULT_SPEC.clip_samples)
    assert len(seen) == 1 + (len(whole) - window) // 10
    for i, features in enumerate(seen):
        np.testing.assert_allclose(features, whole[10 * i : 10 * i + window], atol=1e-5)
    first_end = ((window - 1) * DEFAULT_SPEC.hop_length + DEFAULT_SPEC.n_fft) / DEFAULT_SPEC.sample_rate  # 0.992 s
    assert times[0] == pytest.approx(first_end) and np.allclose(np.diff(times), 0.1)


def test_decider_fires_once_per_word_and_never_on_fillers():
    labels = ["_silence_", "_unknown_", "marvin", "yes"]
    decider = Decider(labels, {"marvin": 0.5, "yes": 0.8}, refractory_s=0.5)
    track = [
        (0.1, [1.0, 0.0, 0.0, 0.0]),  # silence: never fires
        (0.2, [0.0, 1.0, 0.0, 0.0]),  # unknown: never fires
        (0.3, [0.0, 0.3, 0.7, 0.0]),  # marvin fires
        (0.4, [0.0, 0.2, 0.8, 0.0]),  # still above: no second detection
        (0.9, [0.0, 0.1, 0.9, 0.0]),  # refractory over, but marvin has not dropped below: none
        (1.0, [0.0, 0.3, 0.2, 0.7]),  # yes below its own threshold 0.8
        (1.1, [0.0, 0.1, 0.0, 0.9]),  # yes fires
        (1.2, [0.0, 0.1, 0.6, 0.3]),  # marvin re-armed, but within refractory
        (1.7, [0.0, 0.1, 0.6, 0.3]),  # marvin fires again
    ]
    fired = [d for t, p in track if (d := decider.update(t, np.array(p)))]
    assert [(d.time_s, d.label) for d in fired] == [(0.3, "marvin"), (1.1, "yes"), (1.7, "marvin")]


def test_detector_finds_keywords_in_a_generated_stream(kws_export, commands_corpus):
    """Keywords in noise, one after another: the streaming path must find what the model knows. The test model
    (a minute of training on a tiny corpus) knows its training voices, so the stream is built from those."""
    words = Manifest.read(kws_export).keywords
    audio, events = make_stream(commands_corpus, words, minutes=1, seed=1, snr_db=(20.0, 30.0), split="train")
    found = list(KeywordSpotter.from_export(kws_export).detector.run(np.array_split(audio, len(audio) // 1600)))
    keyword_events = [(onset, label) for onset, label, _ in events if label in words]
    hits = [e for e in keyword_events if any(d.label == e[1] and e[0] <= d.time_s <= e[0] + 2 for d in found)]
    assert len(keyword_events) >= 5 and len(hits) >= 0.75 * len(keyword_events)


def test_detector_stays_silent_on_noise(kws_export, commands_corpus):
    from asr.data.speech_commands import SpeechCommands

    manifest = Manifest.read(kws_export)
    labels, spec = manifest.labels, manifest.features
    noise = np.concatenate(SpeechCommands(commands_corpus, "testing", keywords(labels)).background_noise())
    detector = KeywordSpotter.from_export(kws_export).detector
    assert list(detector.run(np.array_split(noise[: 60 * spec.sample_rate], 600))) == []
