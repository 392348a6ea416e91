"""The numpy front end (devices) and the torchaudio one (training) agree on real generated speech."""

import numpy as np
import pytest

from asr.audio import read_audio
from asr.features import DEFAULT_SPEC, log_mel

torch = pytest.importorskip("torch")
LogMel = pytest.importorskip("asr.features.logmel").LogMel

# Measured: max |numpy - torchaudio| over the tiny corpus was ~2e-5 in normalised units (float32 FFTs).
TOLERANCE = 1e-3


def test_numpy_and_torchaudio_features_agree(commands_corpus, sentences_corpus):
    clips = sorted(commands_corpus.glob("*/*.wav"))[::4] + sorted(sentences_corpus.glob("*/*/*/*.flac"))[:4]
    front = LogMel(DEFAULT_SPEC)
    worst = 0.0
    for path in clips:
        audio = read_audio(path)
        ours = log_mel(audio)
        theirs = front(torch.from_numpy(audio)[None])[0].numpy()
        assert ours.shape == theirs.shape == (DEFAULT_SPEC.num_frames(len(audio)), DEFAULT_SPEC.n_mels)
        worst = max(worst, float(np.abs(ours - theirs).max()))
    assert worst < TOLERANCE, worst
    print(f"max |numpy - torchaudio| log-mel difference over {len(clips)} clips: {worst:.2e}")


def test_one_second_clip_gives_97_frames(commands_corpus):
    audio = read_audio(next((commands_corpus / "marvin").glob("*.wav")))
    assert log_mel(audio).shape == (97, 40)
