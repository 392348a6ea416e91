"""A keyword model's phone head exported as a CTC model (`asr export --phones`, loop route), and wake words defined
by text spotted with it: the phrase becomes espeak-ng phones at set-up, stored beside the model."""

import json

import numpy as np
from fixtures_export import run_asr

from asr.audio import read_audio, write_audio
from asr.runtime.bundle import Manifest
from asr.runtime.ctc import keyword_score
from asr.runtime.ctc_stream import load_ctc
from asr.runtime.phrases import phrase_units
from asr.text import PHONES


def _clip(corpus, word: str):
    return read_audio(sorted((corpus / word).glob("*.wav"))[0])


def test_phone_export_carries_the_phone_set(phone_export):
    manifest = Manifest.read(phone_export)
    assert manifest.ctc.units == "phones" and manifest.ctc.phones == PHONES
    assert manifest.labels[-1] == "<blank>" and manifest.output.shape[-1] == len(PHONES) + 1
    parity = manifest.report["parity"]["transcripts"]
    assert parity["tflite_float32_equal_transcripts_vs_torch"] == 1.0
    assert parity["tflite_micro_int8_token_error_vs_torch"] <= 0.35, parity


def test_wake_word_by_text_fires_on_its_word_only(phone_export, commands_corpus, tmp_path):
    model = load_ctc(phone_export)
    gap = np.zeros(8000, np.float32)
    other, marvin = _clip(commands_corpus, "yes"), _clip(commands_corpus, "marvin")
    stream = np.concatenate([gap, other, gap, marvin, gap])
    write_audio(tmp_path / "stream.wav", stream)
    assert phrase_units(model, "marvin") == [PHONES.index(p) for p in "m A@ v I n".split()]
    lp = model.log_probs(stream)
    # The phrase scores higher where it is said than over the other word, and higher than a phrase never said.
    start = (len(gap) * 2 + len(other)) / 16000
    boundary = int(start / 0.04)  # encoder frames are 40 ms apart
    units = phrase_units(model, "marvin")
    said, elsewhere = (keyword_score(part, units, model.blank)[0] for part in (lp[boundary:], lp[:boundary]))
    unsaid = keyword_score(lp, phrase_units(model, "stop"), model.blank)[0]
    assert said > max(elsewhere, unsaid), (said, elsewhere, unsaid)
    threshold = (said + max(elsewhere, unsaid)) / 2
    proc = run_asr("demo", phone_export, "--file", tmp_path / "stream.wav", "--json", "--keyword", "marvin",
                "--keyword", "stop", "--threshold", threshold)  # fmt: skip
    found = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["label"] for d in found] == ["marvin"]
    assert start < found[0]["time_s"] <= len(stream) / 16000
    stored = json.loads((phone_export / "keywords.json").read_text())
    assert stored["marvin"]["unit_names"] == "m A@ v I n".split()
    assert "marvin: m A@ v I n" in proc.stderr  # the phones espeak-ng gave, shown at set-up


def test_a_word_espeak_says_outside_the_phone_set_is_refused(phone_export, commands_corpus, tmp_path):
    write_audio(tmp_path / "clip.wav", _clip(commands_corpus, "marvin"))
    proc = run_asr("demo", phone_export, "--file", tmp_path / "clip.wav", "--keyword", "loch ness", check=False)
    assert proc.returncode == 2
    assert "espeak-ng made 'loch' into [l '0 x]" in proc.stderr and "'x'" in proc.stderr
