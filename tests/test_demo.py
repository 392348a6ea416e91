"""`asr demo` on every input path (file, stdin, microphone) and its errors; wake gate and actions."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from asr.audio import read_audio, write_audio
from asr.cli import main
from asr.runtime.bundle import Manifest
from asr.runtime.detector import Detection
from asr.runtime.wake import WakeGate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def keyword_audio(commands_corpus, tmp_path_factory):
    """Keyword clips of the corpus with 1 s gaps, as a 16 kHz WAV file."""
    clips = [p for p in sorted(commands_corpus.rglob("*.wav")) if not p.parent.name.startswith("_")][:6]
    gap = np.zeros(16000, np.float32)
    audio = np.concatenate([part for clip in clips for part in (read_audio(clip), gap)])
    path = tmp_path_factory.mktemp("demo") / "keywords.wav"
    write_audio(path, audio)
    return path


def demo_json(capsys, *argv) -> tuple[int, list[dict], str]:
    rc = main(["demo", *map(str, argv), "--json", "--threshold", "0.3"])
    out, err = capsys.readouterr()
    return rc, [json.loads(line) for line in out.splitlines()], err


def test_file_stdin_and_microphone_give_the_same_detections(kws_export, keyword_audio, capsys, monkeypatch):
    rc, from_file, err = demo_json(capsys, kws_export, "--file", keyword_audio)
    assert rc == 0 and f"{len(from_file)} detection(s)" in err
    assert from_file, "the keyword clips produced no detection at threshold 0.3"

    pcm = (np.round(read_audio(keyword_audio) * 32768).clip(-32768, 32767).astype("<i2")).tobytes()
    cmd = [sys.executable, str(ROOT / "deploy/pi/demo.py"), str(kws_export), "--stdin", "--json", "--threshold", "0.3"]
    proc = subprocess.run(cmd, input=pcm, capture_output=True, check=True)
    assert [json.loads(line) for line in proc.stdout.decode().splitlines()] == from_file

    audio = read_audio(keyword_audio)
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice(audio))
    rc, from_mic, err = demo_json(capsys, kws_export, "--device", "1")
    assert rc == 130  # the fake microphone ends the way a user does: Ctrl-C
    assert "listening for" in err
    assert from_mic == from_file


class FakeSoundDevice:
    """Stands in for the sounddevice module: an input stream that plays back `audio`, then Ctrl-C."""

    class PortAudioError(Exception):
        pass

    def __init__(self, audio=None, fail=None):
        self.audio, self.fail = audio, fail

    def InputStream(self, samplerate, channels, dtype, blocksize, device):  # noqa: N802 (sounddevice's name)
        if self.fail:
            raise self.PortAudioError(self.fail)
        assert (samplerate, channels, dtype, device) == (16000, 1, "float32", 1)
        return FakeStream(self.audio)


class FakeStream:
    def __init__(self, audio):
        self.audio, self.pos = audio, 0

    def start(self):
        pass

    def stop(self):
        pass

    def close(self):
        pass

    def read(self, frames):
        if self.pos >= len(self.audio):
            raise KeyboardInterrupt
        block = self.audio[self.pos : self.pos + frames]
        self.pos += frames
        return block[:, None], False


def test_no_microphone_suggests_file_or_stdin(kws_export, capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice(fail="Error querying device -1"))
    assert main(["demo", str(kws_export)]) == 2
    err = capsys.readouterr().err
    assert "Error querying device -1" in err and "--file" in err and "--stdin" in err
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed
    assert main(["demo", str(kws_export)]) == 2
    assert "sounddevice is not installed" in capsys.readouterr().err
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")  # what it does then
    monkeypatch.delitem(sys.modules, "sounddevice")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["demo", str(kws_export)]) == 2
    err = capsys.readouterr().err
    assert "PortAudio library not found" in err and "libportaudio2" in err and "--stdin" in err


def test_bad_model_file_is_a_clear_error(kws_export, keyword_audio, tmp_path, capsys):
    export = shutil.copytree(kws_export, tmp_path / "export")
    model = export / Manifest.read(export).models["int8"]
    model.write_text("not a model")
    assert main(["demo", str(export), "--file", str(keyword_audio)]) == 2
    err = capsys.readouterr().err
    assert str(model) in err and "not a TFLite model" in err and "Traceback" not in err


def test_wav_at_the_wrong_sample_rate_is_refused(kws_export, keyword_audio, tmp_path, capsys):
    wrong = tmp_path / "8k.wav"
    write_audio(wrong, read_audio(keyword_audio)[::2], sample_rate=8000)
    assert main(["demo", str(kws_export), "--file", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert str(wrong) in err and "8000 Hz" in err


def test_actions_run_for_their_label(kws_export, keyword_audio, tmp_path, capsys):
    rc, detections, _ = demo_json(capsys, kws_export, "--file", keyword_audio)
    label = detections[0]["label"]
    log = tmp_path / "fired.txt"
    actions = tmp_path / "actions.toml"
    actions.write_text(f'{label} = "echo $ASR_LABEL >> {log}"\n')
    rc, again, _ = demo_json(capsys, kws_export, "--file", keyword_audio, "--actions", actions)
    expected = [d["label"] for d in again if d["label"] == label]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().split()) < len(expected)):
        time.sleep(0.05)
    assert log.read_text().split() == expected
    actions.write_text('no_such_label = "true"\n')
    assert main(["demo", str(kws_export), "--file", str(keyword_audio), "--actions", str(actions)]) == 2
    assert "unknown label(s) ['no_such_label']" in capsys.readouterr().err


def test_wake_gate_passes_one_command_shortly_after_the_wake_word():
    gate = WakeGate("marvin", ["_silence_", "_unknown_", "marvin", "yes", "no"], window_s=3.0)
    seen = [(1.0, "yes"), (2.0, "marvin"), (4.0, "yes"), (4.5, "no"), (10.0, "marvin"), (13.5, "no")]
    passed = [(t, label) for t, label in seen if gate.accept(Detection(t, label, 0.9))]
    assert passed == [(2.0, "marvin"), (4.0, "yes"), (10.0, "marvin")]
    with pytest.raises(ValueError, match="wake word 'hey'"):
        WakeGate("hey", ["_silence_", "marvin"])
