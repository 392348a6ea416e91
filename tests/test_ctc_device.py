"""A tiny CTC model trained for real on the tiny generated sentences corpus, exported through the loop route, run by
`asr transcribe` and `asr demo --keyword` with the int8 model: transcripts against PyTorch's, phrases by text."""

import json
import shutil
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
from asr.runtime.bundle import Manifest
from asr.runtime.ctc import greedy, keyword_score
from asr.runtime.ctc_stream import encoder_frames, load_ctc
from asr.train.loop import train


@pytest.fixture(scope="module")
def ctc_run(tmp_path_factory, sentences_corpus) -> Path:
    """A tiny tied CTC model (2 depths, one stored block) fitted to the tiny corpus's training sentences."""
    overrides = {
        "data.root": str(sentences_corpus),
        "data.tokenizer_vocab": 28,
        **TINY_TIED_MODEL,
        "model.lora_rank": 0,
        "train.batch_size": 8,
        "train.lr": 5e-3,
        "train.warmup_steps": 20,
        "train.steps": 160,
        "train.eval_every": 160,
        "train.checkpoint_every": 160,
        "train.num_workers": 0,
        "train.spec_time_mask": 0,
        "train.silence_pad_s": 0.0,  # 160 steps fit the sentences; padded ones would need more to time words
    }
    run_dir = tmp_path_factory.mktemp("ctc-run")
    train(load_config("asr-tiny", overrides), run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="module")
def ctc_export(ctc_run, sentences_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ctc-export") / "ctc"
    run_asr("export", ctc_run / "checkpoint.pt", out, "--calibration", 32, "--data", sentences_corpus,
         "--window-seconds", 2, "--overlap-seconds", 0.8)  # fmt: skip
    return out


def _torch_window_text(ctc_run, export_dir, audio):
    """PyTorch float greedy over the same windows the device runs."""
    from asr.export.ctc import stream_log_probs, torch_window_model
    from asr.model.checkpoint import load_checkpoint

    model = load_ctc(export_dir)
    loaded = load_checkpoint(ctc_run / "checkpoint.pt")
    lp = stream_log_probs(torch_window_model(loaded.model), audio, model.spec, model.plan, model.blank + 1)
    return model.decode(greedy(lp, model.blank)), greedy(lp, model.blank)


def test_export_carries_pieces_and_measures_parity(ctc_export, ctc_run):
    manifest = Manifest.read(ctc_export)
    r = manifest.report
    from asr.text import Tokenizer

    tokenizer = Tokenizer(ctc_run / "tokenizer.model")
    assert manifest.ctc.pieces == [tokenizer._sp.IdToPiece(i) for i in range(tokenizer.vocab_size)]
    assert manifest.output.shape[1] == encoder_frames(manifest.ctc.window_frames, [2, 2])
    assert r["route"] == "loop" and r["route_details"]["loops"] == [{"blocks": [0], "iterations": 2}]
    assert r["effective_parameters"] > r["unique_parameters"]
    parity = r["parity"]["transcripts"]
    assert parity["tflite_float32_equal_transcripts_vs_torch"] == 1.0
    assert parity["tflite_micro_int8_token_error_vs_torch"] <= 0.35, parity
    assert r["arena_measured_bytes"] > 0


def test_transcribe_int8_matches_pytorch_greedy(ctc_export, ctc_run, sentences_corpus, tmp_path):
    model = load_ctc(ctc_export)
    ids = []
    for audio, _, _ in list(LibriSpeech(sentences_corpus, "train-clean-100"))[:2]:
        path = tmp_path / "clip.wav"
        write_audio(path, audio)
        torch_text, torch_ids = _torch_window_text(ctc_run, ctc_export, read_audio(path))
        float_text = run_asr("transcribe", ctc_export, path, "--precision", "float32", "--units").stdout.strip()
        assert float_text == torch_text
        int8_text = run_asr("transcribe", ctc_export, path, "--units").stdout.strip()
        # The device decoder (piece list, no sentencepiece) spells what the tokenizer would.
        int8_ids = greedy(model.log_probs(read_audio(path)), model.blank)
        assert model.decode(int8_ids) == int8_text
        ids.append((torch_ids, int8_ids))
    from asr.export.ctc import _token_error

    assert _token_error([t for t, _ in ids], [i for _, i in ids]) <= 0.35
    # Raw PCM on stdin gives the transcript of the file.
    pcm = np.round(read_audio(path) * 32768).clip(-32768, 32767).astype("<i2").tobytes()  # the file's samples
    proc = subprocess.run(
        [sys.executable, "-m", "asr.cli", "transcribe", str(ctc_export), "-", "--units"], input=pcm, capture_output=True
    )
    assert proc.returncode == 0 and proc.stdout.decode().strip() == int8_text


def test_stream_in_any_chunks_equals_one_pass(ctc_export, sentences_corpus):
    model = load_ctc(ctc_export)
    audio = np.concatenate([a for a, _, _ in list(LibriSpeech(sentences_corpus, "train-clean-100"))[:3]])
    whole = model.log_probs(audio)
    # Every frame of the audio, then the rest of the last (silence-padded) window: CTC's late emissions live there.
    frames, plan = model.spec.num_frames(len(audio)), model.plan
    assert len(whole) == plan.starts(frames)[-1] // plan.stride + plan.outputs
    assert len(whole) > encoder_frames(frames, plan.time_strides)
    stream, parts, rng, pos = model.stream(), [], np.random.default_rng(0), 0
    while pos < len(audio):
        step = int(rng.integers(1, 9000))
        parts.append(stream.push(audio[pos : pos + step]))
        pos += step
    parts.append(stream.finish())
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_transcribe_writes_words_of_the_export_lexicon(ctc_export, sentences_corpus, tmp_path):
    """The export carries a lexicon and a word n-gram of its training sentences; `asr transcribe` reads words with
    them, never worse than the greedy pieces on the sentences they came from, and `--lexicon` swaps the words."""
    import jiwer

    lexicon = {line.split("\t")[0] for line in (ctc_export / "words.arpa").parent.joinpath("lexicon.txt").open()}
    corpus = LibriSpeech(sentences_corpus, "train-clean-100")
    assert {w.lower() for t in corpus.transcripts() for w in t.split()} <= lexicon
    refs, words, units = [], [], []
    for i, (audio, text, _) in enumerate(list(corpus)[:3]):
        write_audio(tmp_path / f"{i}.wav", audio)
        refs.append(text.lower())
        words.append(run_asr("transcribe", ctc_export, tmp_path / f"{i}.wav").stdout.strip())
        units.append(run_asr("transcribe", ctc_export, tmp_path / f"{i}.wav", "--units").stdout.strip().lower())
    assert all(w and set(w.split()) <= lexicon for w in words), words
    assert jiwer.wer(refs, words) <= jiwer.wer(refs, [u or "-" for u in units]), (refs, words, units)
    (tmp_path / "few.txt").write_text("pause the\nmusic\n")
    few = run_asr("transcribe", ctc_export, tmp_path / "0.wav", "--lexicon", tmp_path / "few.txt").stdout.split()
    assert few and set(few) <= {"pause", "the", "music"}


def test_phrase_by_text_is_spotted_in_a_generated_clip(ctc_export, sentences_corpus, tmp_path):
    model = load_ctc(ctc_export, precision="float32")
    corpus = LibriSpeech(sentences_corpus, "train-clean-100")
    audio, text, _ = corpus[0]
    other = next(a for a, t, _ in corpus if not set(t.split()) & set(text.split()))
    said = max(text.split(), key=len).lower()
    unsaid = next(w.lower() for t in corpus.transcripts() for w in t.split() if w not in text.split() and len(w) > 3)
    silence = np.zeros(8000, np.float32)
    stream_audio = np.concatenate([silence, other, silence, audio, silence])
    write_audio(tmp_path / "stream.wav", stream_audio)
    lp = model.log_probs(stream_audio)
    from asr.runtime.phrases import phrase_units

    # The phrase scores higher where it is said than over the other sentence, and higher than a phrase never said.
    start = (len(silence) * 2 + len(other)) / 16000
    boundary = int(start / 0.04)  # encoder frames are 40 ms apart
    units = phrase_units(model, said)
    here, elsewhere = (keyword_score(part, units, model.blank)[0] for part in (lp[boundary:], lp[:boundary]))
    never = keyword_score(lp, phrase_units(model, unsaid), model.blank)[0]
    assert here > max(elsewhere, never), (here, elsewhere, never)
    threshold = (here + max(elsewhere, never)) / 2
    out_dir = tmp_path / "export"
    shutil.copytree(ctc_export, out_dir)
    proc = run_asr("demo", out_dir, "--file", tmp_path / "stream.wav", "--precision", "float32", "--json",
                "--keyword", said, "--keyword", unsaid, "--threshold", threshold)  # fmt: skip
    found = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["label"] for d in found] == [said]
    assert start < found[0]["time_s"] <= start + len(audio) / 16000 + 0.2
    stored = json.loads((out_dir / "keywords.json").read_text())
    assert set(stored) == {said, unsaid}


def test_bad_input_gives_clear_errors(ctc_export, ctc_run, sentences_corpus, tmp_path):
    write_audio(tmp_path / "silent.wav", np.zeros(16000, np.float32))
    proc = run_asr("transcribe", ctc_export, tmp_path / "silent.wav", check=False)
    assert proc.returncode == 2 and "silent" in proc.stderr
    write_audio(tmp_path / "r8k.wav", np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 8000)
    proc = run_asr("transcribe", ctc_export, tmp_path / "r8k.wav", check=False)
    assert proc.returncode == 2 and "8000 Hz" in proc.stderr
    write_audio(tmp_path / "short.wav", np.full(100, 0.1, np.float32))
    proc = run_asr("transcribe", ctc_export, tmp_path / "short.wav", check=False)
    assert proc.returncode == 2 and "shorter than one" in proc.stderr
    proc = run_asr("demo", ctc_export, "--file", tmp_path / "r8k.wav", "--keyword", "zq", check=False)
    assert proc.returncode == 2 and "cannot spell" in proc.stderr
    # A checkpoint without its tokenizer cannot be exported.
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(ctc_run / "checkpoint.pt", lonely / "checkpoint.pt")
    proc = run_asr("export", lonely / "checkpoint.pt", tmp_path / "out", "--data", sentences_corpus, check=False)
    assert proc.returncode == 2 and "tokenizer" in proc.stderr and not (tmp_path / "out").exists()
