"""Phone CTC models: a keyword model's phone head exported as a CTC model (`asr export --phones`, loop route), a
sentence model trained on phones (data.units = "phones"), and wake words defined by text spotted with them: the
phrase becomes espeak-ng phones at set-up, stored beside the model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures_export import run_asr
from fixtures_model import TINY_TIED_MODEL

from asr.audio import read_audio, write_audio
from asr.config import load_config
from asr.data.librispeech import LibriSpeech
from asr.data.recipe import DATA_DIR
from asr.model.checkpoint import load_checkpoint
from asr.runtime.bundle import Manifest
from asr.runtime.ctc import keyword_score
from asr.runtime.ctc_stream import load_ctc
from asr.runtime.intent import load_grammar
from asr.runtime.phrases import phrase_units
from asr.runtime.words import LEXICON_FILE, read_lexicon
from asr.text import PHONES, PhoneTokenizer
from asr.train.loop import train

GRAMMAR = DATA_DIR / "grammar.toml"


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


@pytest.fixture(scope="module")
def phone_ctc_run(tmp_path_factory, sentences_corpus):
    """A tiny tied CTC model trained on the tiny corpus's sentences written as phones."""
    overrides = {
        "data.root": str(sentences_corpus),
        "data.units": "phones",
        **TINY_TIED_MODEL,
        "model.lora_rank": 0,
        "train.batch_size": 8,
        "train.lr": 5e-3,
        "train.warmup_steps": 20,
        "train.steps": 160,
        "train.eval_every": 80,
        "train.checkpoint_every": 160,
        "train.num_workers": 0,
        "train.spec_time_mask": 0,
    }
    run_dir = tmp_path_factory.mktemp("phone-ctc-run")
    train(load_config("asr-tiny", overrides), run_dir, progress=False)
    return run_dir


def test_sentences_become_espeak_phones():
    tokenizer = PhoneTokenizer(["turn on the light"])
    assert tokenizer.decode(tokenizer.encode("Marvin")) == "m A@ v I n"
    assert tokenizer.encode("turn on") == tokenizer.encode("turn") + tokenizer.encode("on")
    assert tokenizer.blank == tokenizer.vocab_size == len(PHONES)


def test_a_sentence_model_learns_phones_and_exports_them(phone_ctc_run, sentences_corpus, tmp_path):
    """Trained on phones (its CTC loss falls), the model exports with the phone set, so a phrase by text needs no
    other model, and `asr eval` reports its phone error rate."""
    loaded = load_checkpoint(phone_ctc_run / "checkpoint.pt")
    assert loaded.tokenizer is None and loaded.model.classifier.out_features == len(PHONES) + 1
    steps = [json.loads(line) for line in (phone_ctc_run / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in steps if "loss" in m]
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:20]), losses  # it learns the phones of the sentences
    out = tmp_path / "phones"
    run_asr("export", phone_ctc_run / "checkpoint.pt", out, "--calibration", 16, "--parity", 4,
            "--data", sentences_corpus, "--window-seconds", 2, "--overlap-seconds", 0.8)  # fmt: skip
    manifest = Manifest.read(out)
    assert manifest.ctc.units == "phones" and manifest.ctc.phones == PHONES
    parity = manifest.report["parity"]["transcripts"]
    assert parity["tflite_float32_equal_transcripts_vs_torch"] == 1.0
    assert phrase_units(load_ctc(out), "marvin") == [PHONES.index(p) for p in "m A@ v I n".split()]
    audio, _, _ = LibriSpeech(sentences_corpus, "test-clean")[0]
    write_audio(tmp_path / "utt.wav", audio, 16000)
    # Where espeak-ng is not installed (a Pi), the export's lexicon spells the grammar's requests.
    no_espeak = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    proc = subprocess.run([sys.executable, "-m", "asr.cli", "transcribe", str(out), str(tmp_path / "utt.wav"),
                           "--grammar", str(GRAMMAR)], capture_output=True, text=True, env=no_espeak)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    intent = json.loads(proc.stdout)
    templates = [t["text"] for t in load_grammar(GRAMMAR)["templates"]]
    assert intent["intent"] in templates and intent["text"]  # a request of the grammar, written in phones to score
    # Free text is words of the export's lexicon (its training sentences' and the grammar's), not phones.
    lexicon = read_lexicon(out / LEXICON_FILE, PHONES)
    words = run_asr("transcribe", out, tmp_path / "utt.wav").stdout.split()
    assert words and set(words) <= set(lexicon), words
    assert set(run_asr("transcribe", out, tmp_path / "utt.wav", "--units").stdout.split()) <= set(PHONES)
    # The same in an app, in three lines.
    from asr import Recognizer

    recognizer = Recognizer(out, grammar=GRAMMAR)
    assert recognizer.transcribe(audio) == " ".join(words) and recognizer.request(audio).to_dict() == intent
    (out / LEXICON_FILE).write_text("marvin\tm A@ v I n\nloch\tl 0 x\n")  # 'x' is no phone of the model
    proc = run_asr("transcribe", out, tmp_path / "utt.wav", check=False)
    assert proc.returncode == 2 and f"{LEXICON_FILE}:2" in proc.stderr and "'x'" in proc.stderr
    evaluated = run_asr("eval", phone_ctc_run / "checkpoint.pt", sentences_corpus, "--split", "test-clean",
                        "--out", tmp_path / "eval.json")  # fmt: skip
    assert "PER" in evaluated.stdout
    refs = json.loads((tmp_path / "eval.json").read_text())
    texts = LibriSpeech(sentences_corpus, "test-clean").transcripts()
    assert refs["examples"] == len(texts)
