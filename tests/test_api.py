"""The public API: `from asr import KeywordSpotter`, the device-side face of an export, the same as `asr demo`."""

import json
import subprocess
import sys

import numpy as np
import pytest

from asr import KeywordSpotter
from asr.audio import read_audio, write_audio
from asr.cli import main
from asr.errors import AsrError
from asr.runtime.bundle import Thresholds, save_thresholds


@pytest.fixture(scope="module")
def clip_stream(commands_corpus, commands_keywords, tmp_path_factory):
    """Every keyword clip of the test split with 1 s gaps: a real recording to spot in."""
    clips = [p for word in commands_keywords for p in sorted((commands_corpus / word).glob("*.wav"))[:2]]
    gap = np.zeros(16000, np.float32)
    audio = np.concatenate([part for clip in clips for part in (read_audio(clip), gap)])
    path = tmp_path_factory.mktemp("api") / "keywords.wav"
    write_audio(path, audio)
    return path


def test_the_api_gives_asr_demos_detections_from_int16_and_float32(kws_export, clip_stream, capsys):
    assert main(["demo", str(kws_export), "--file", str(clip_stream), "--json"]) == 0
    from_demo = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert from_demo, "the demo found no keyword in a stream of keyword clips"

    audio = read_audio(clip_stream)  # as written: 16-bit PCM, so int16 holds it exactly
    pcm = np.round(audio * 32768).clip(-32768, 32767).astype(np.int16)
    for chunks in (np.array_split(pcm, 97), np.array_split(audio, 13)):
        spotter = KeywordSpotter.from_export(kws_export)
        found = [d.to_dict() for chunk in chunks for d in spotter.predict(chunk, sample_rate=16000)]
        assert found == from_demo
    assert [d.to_dict() for d in KeywordSpotter.from_export(kws_export).predict_clip(clip_stream)] == from_demo


def test_the_api_applies_the_saved_thresholds(kws_export, clip_stream, tmp_path):
    export = tmp_path / "export"
    subprocess.run(["cp", "-r", str(kws_export), str(export)], check=True)
    default = KeywordSpotter.from_export(export).predict_clip(clip_stream)
    save_thresholds(export, Thresholds(0.05, {}, "a test"))
    saved = KeywordSpotter.from_export(export)
    assert saved.detector.decider.thresholds == dict.fromkeys(saved.keywords, 0.05)
    assert len(saved.predict_clip(clip_stream)) > len(default)


def test_the_api_refuses_audio_it_would_misread(kws_export, clip_stream, tmp_path):
    spotter = KeywordSpotter.from_export(kws_export)
    audio = read_audio(clip_stream)
    with pytest.raises(AsrError, match="int16 PCM or float32.*float64"):
        spotter.predict(audio.astype(np.float64))
    with pytest.raises(AsrError, match="mono"):
        spotter.predict(np.stack([audio, audio], axis=1))
    with pytest.raises(AsrError, match="8000 Hz"):
        spotter.predict(audio[:8000], sample_rate=8000)
    slow = tmp_path / "8k.wav"
    write_audio(slow, audio[::2], sample_rate=8000)
    with pytest.raises(AsrError, match=r"8k\.wav: sample rate is 8000 Hz, expected 16000"):
        spotter.predict_clip(slow)


def test_the_api_imports_without_torch_or_tensorflow(kws_export, clip_stream):
    code = (
        "import sys\nfrom asr import KeywordSpotter\n"
        f"print(len(KeywordSpotter.from_export({str(kws_export)!r}).predict_clip({str(clip_stream)!r})))\n"
        "print(sorted(m for m in ('torch', 'torchaudio', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert int(out[0]) > 0 and out[1] == "[]"
