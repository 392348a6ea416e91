"""asr.audio: reading, writing, resampling, and the errors for every kind of bad file."""

import numpy as np
import pytest
import soundfile as sf

from asr.audio import AudioError, read_audio, resample_audio, write_audio


@pytest.fixture(scope="module")
def speech(commands_corpus, commands_keywords) -> np.ndarray:
    path = sorted((commands_corpus / commands_keywords[0]).glob("*.wav"))[0]
    return read_audio(path)


def test_round_trip_wav_and_flac(tmp_path, speech):
    for name in ("a.wav", "a.flac"):
        write_audio(tmp_path / name, speech, 16000)
        back = read_audio(tmp_path / name)
        assert back.dtype == np.float32 and back.shape == speech.shape
        assert np.abs(back - speech).max() < 1 / 32767 + 1e-6  # 16-bit quantisation only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flac", "a.wav"]  # no temp files left


def test_write_replaces_atomically(tmp_path, speech):
    path = tmp_path / "x.wav"
    write_audio(path, speech, 16000)
    write_audio(path, speech[:800], 16000)
    assert len(read_audio(path)) == 800
    with pytest.raises(AudioError, match="mono"):
        write_audio(tmp_path / "stereo.wav", np.zeros((10, 2)), 16000)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such audio file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10), "not a readable audio file"),
        (lambda p: sf.write(p, np.zeros((1600, 2), np.float32), 16000), "2 channels"),
        (lambda p: sf.write(p, np.zeros(4410, np.float32), 44100), "44100 Hz, expected 16000 Hz"),
        (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "no samples"),
    ],
    ids=["missing", "empty", "corrupt", "stereo", "wrong-rate", "no-samples"],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message) as err:
        read_audio(path)
    assert str(path) in str(err.value)


def test_resample_on_read_matches_torchaudio(tmp_path, speech):
    torch = pytest.importorskip("torch")
    taf = pytest.importorskip("torchaudio.functional")
    for rate in (8000, 22050, 44100, 48000):
        sf.write(tmp_path / "r.wav", resample_audio(speech, 16000, rate), rate, subtype="FLOAT")
        x = sf.read(tmp_path / "r.wav", dtype="float32")[0]
        ours = read_audio(tmp_path / "r.wav", resample=True)
        theirs = taf.resample(torch.from_numpy(x), rate, 16000).numpy()
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() < 1e-4, rate  # torchaudio builds its kernel in float32


def test_resample_keeps_a_tone():
    t = np.arange(22050) / 22050
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample_audio(tone, 22050, 16000)
    assert len(out) == 16000
    expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.abs(out[200:-200] - expected[200:-200]).max() < 2e-3


def test_atomic_writes_are_as_readable_as_plain_ones(tmp_path, speech):
    from asr.files import write_text_atomic

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_audio(tmp_path / "a.wav", speech, 16000)
    write_text_atomic(tmp_path / "manifest.json", "{}")
    # mkstemp's files are private (0o600): a Pi service running as another user could not read them
    for path in (tmp_path / "a.wav", tmp_path / "manifest.json"):
        assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
