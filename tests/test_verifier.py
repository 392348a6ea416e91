"""The Pi-side verifier (asr verifier, asr.runtime.verifier): trained on real-speech embeddings, checking detections."""

import json
import shutil

import numpy as np
import pytest

from asr.runtime.detector import Detection
from asr.runtime.interpreter import ModelFileError
from asr.runtime.spotter import KeywordSpotter
from asr.runtime.verifier import CONFIG_FILE, HEAD_FILE, VERIFIER_DIR, Verifier, VerifierError
from tests.fixtures_export import run_asr

# Kokoro clips of "marvin" and of each other keyword with their near-misses: few, as the corpus is tiny
NEAR_MISS_CLIPS = ("--wake-clips", "12", "--keyword-clips", "4")


@pytest.fixture(scope="module")
def verified_export(kws_export, commands_corpus, sentences_corpus, tmp_path_factory):
    """The tiny export with a verifier trained on the tiny corpus, the generated sentences standing in for real
    speech."""
    export = tmp_path_factory.mktemp("verified") / "kws"
    shutil.copytree(kws_export, export)
    work = export.parent / "work"
    speech = ("--speech", sentences_corpus, "--work", work)
    proc = run_asr("verifier", export, "--data", commands_corpus, *speech, *NEAR_MISS_CLIPS)
    assert "48 of the keywords and their near-misses" in proc.stdout and "validation accuracy" in proc.stdout
    return export


def test_the_wake_word_is_learnt_against_its_near_misses(verified_export):
    """12 Kokoro clips, 600 : 240 near-misses to readings of the word, each clean and in noise: 18 `_unknown_`
    examples and 6 of "marvin", the embeddings cached beside the others."""
    from asr.runtime.bundle import Manifest

    labels = Manifest.read(verified_export).labels
    with np.load(verified_export.parent / "work" / "wake.npz") as f:
        y = f["y"]
        assert f["x"].shape[0] == 24 and np.isfinite(f["x"]).all()
    assert sorted(y.tolist()) == [1] * 18 + [labels.index("marvin")] * 6


def test_every_other_keyword_is_learnt_against_its_near_misses(verified_export):
    """4 clips of each of yes, no and stop: 3 near-misses and 1 reading, each clean and in noise."""
    from asr.runtime.bundle import Manifest

    labels = Manifest.read(verified_export).labels
    with np.load(verified_export.parent / "work" / "keywords.npz") as f:
        y = f["y"]
        assert f["x"].shape[0] == 24 and np.isfinite(f["x"]).all()
    assert sorted(y.tolist()) == [1] * 18 + sorted([labels.index(k) for k in ("yes", "no", "stop")] * 2)


def test_near_misses_without_kokoro_say_how_to_set_it_up(commands_corpus, monkeypatch, tmp_path):
    from asr.data import kokoro
    from asr.train.verifier import near_miss_examples

    monkeypatch.setattr(kokoro, "KOKORO_HOME", tmp_path / "nothing")
    with pytest.raises(kokoro.KokoroSetupError, match=r"model\.onnx is missing; run tools/setup\.sh"):
        near_miss_examples(None, commands_corpus, ["marvin"], ["_silence_", "_unknown_", "marvin"], 20480, 4)


def with_threshold(export, tmp_path, threshold: float):
    out = tmp_path / f"t{threshold}"
    shutil.copytree(export, out)
    config = out / VERIFIER_DIR / CONFIG_FILE
    config.write_text(json.dumps(json.loads(config.read_text()) | {"threshold": threshold}))
    return out


def test_the_verifier_is_written_whole_and_hears_the_keywords(verified_export, commands_corpus):
    from asr.data.speech_commands import SpeechCommands
    from asr.runtime.bundle import Manifest

    verifier = Verifier.from_export(verified_export)
    manifest = Manifest.read(verified_export)
    assert verifier.config.labels == manifest.labels
    assert sorted(p.name for p in (verified_export / VERIFIER_DIR).iterdir()) == sorted(
        ["melspectrogram.tflite", "embedding_model.tflite", "LICENSE", HEAD_FILE, CONFIG_FILE]
    )
    assert not list(verified_export.glob(".verifier-*")), "the staging directory is left behind"
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in [verified_export / VERIFIER_DIR, *verifier.home.iterdir()])
    # On the clips it learnt from, the head names the keyword far above chance (1 in 13).
    corpus = SpeechCommands(commands_corpus, "train", manifest.keywords)
    clips = [(clip, label) for clip, label in (corpus[i] for i in range(len(corpus.items))) if label >= 2][:40]
    n = verifier.config.crop_samples
    right = [
        verifier.probability(np.pad(clip, (0, n - len(clip))), manifest.labels[label]) > 0.5 for clip, label in clips
    ]
    assert np.mean(right) > 0.5


def test_crops_end_the_delay_after_a_detection_and_pad_where_audio_is_missing(verified_export):
    verifier = Verifier.from_export(verified_export)
    rate, n, delay = verifier.config.sample_rate, verifier.config.crop_samples, verifier.config.delay_s
    audio = np.arange(3 * rate, dtype=np.float32)
    crop = verifier.crop(audio, 2.0)
    end = round((2.0 + delay) * rate)
    assert np.array_equal(crop, audio[end - n : end])
    # the same audio held from 1 s on: the same crop
    assert np.array_equal(verifier.crop(audio[rate:], 2.0, audio_start_s=1.0), crop)
    # near the start and past the end: zeros where there is no audio
    early = verifier.crop(audio, 0.1)
    assert np.all(early[: n - round((0.1 + delay) * rate)] == 0) and early[-1] == audio[round((0.1 + delay) * rate) - 1]
    late = verifier.crop(audio, 2.9)
    assert late[-1] == 0 and late[n - 1 - (round((2.9 + delay) * rate) - len(audio))] == audio[-1]


def test_the_spotter_holds_each_detection_until_its_crop_is_heard(verified_export, kws_export, tmp_path):
    from asr.runtime.bundle import Thresholds, save_thresholds

    stream = [np.random.default_rng(0).standard_normal(1600).astype(np.float32) * 0.3 for _ in range(60)]
    plain = tmp_path / "plain"
    shutil.copytree(kws_export, plain)
    everyone = with_threshold(verified_export, tmp_path, 0.0)
    nobody = with_threshold(verified_export, tmp_path, 1.01)
    for export in (plain, everyone, nobody):
        save_thresholds(export, Thresholds(0.05, {}, "test: low, so the tiny model fires"))
    expected = list(KeywordSpotter.from_export(plain).detections(stream))
    assert expected, "the test needs detections"

    spotter = KeywordSpotter.from_export(everyone)
    pushed, seen = 0, []
    for chunk in stream:
        pushed += len(chunk)
        for d in spotter.predict(chunk):
            assert pushed >= (d.time_s + spotter.verifier.config.delay_s) * spotter.sample_rate
            seen.append(d)
    seen += spotter.flush()
    assert seen == expected  # every detection passes at threshold 0, none is lost or moved
    assert list(KeywordSpotter.from_export(nobody).detections(stream)) == []
    assert list(KeywordSpotter.from_export(nobody, verify=False).detections(stream)) == expected
    # behind a wake word only the wake word is checked (asr demo --wake-then-command)
    gated = KeywordSpotter.from_export(nobody)
    gated.checked_labels = {expected[0].label}
    assert list(gated.detections(stream)) == [d for d in expected if d.label != expected[0].label]


def test_the_demo_checks_only_the_wake_word_behind_it(verified_export, tmp_path):
    from asr.audio import write_audio

    wav = tmp_path / "noise.wav"
    write_audio(wav, np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1, 16000)
    plain = run_asr("demo", verified_export, "--file", wav)
    gated = run_asr("demo", verified_export, "--file", wav, "--wake-then-command")
    assert "each detection is checked by" in plain.stderr
    assert "each 'marvin' is checked by" in gated.stderr


def test_a_recording_is_confirmed_as_the_stream_confirms_it(verified_export):
    verifier = Verifier.from_export(verified_export)
    audio = np.random.default_rng(1).standard_normal(4 * 16000).astype(np.float32) * 0.1
    detections = [Detection(t, label, 0.9) for t, label in ((1.0, "marvin"), (2.5, "yes"), (3.9, "no"))]
    cache: dict = {}
    kept = verifier.confirmed(audio, detections, cache)
    assert len(cache) == 3
    assert kept == [d for d in detections if verifier.passes(verifier.crop(audio, d.time_s), d.label)]


def test_eval_stream_measures_with_the_verifier(verified_export, commands_corpus, tmp_path):
    from asr.audio import write_audio
    from asr.data.stream import make_stream, write_events
    from asr.runtime.bundle import Manifest

    words = Manifest.read(verified_export).keywords
    audio, events = make_stream(commands_corpus, words, minutes=0.5, seed=1, snr_db=(20.0, 30.0), split="train")
    write_audio(tmp_path / "stream.wav", audio, 16000)
    write_events(tmp_path / "events.csv", events)
    nobody = with_threshold(verified_export, tmp_path, 1.01)
    args = [nobody, tmp_path / "stream.wav", tmp_path / "events.csv"]
    report = tmp_path / "r.json"
    run_asr("eval-stream", *args, "--out", report)
    checked = json.loads(report.read_text())
    assert checked["verified"] and checked["chosen"]["overall"]["hits"] == 0
    assert all(s["false_accepts_per_hour"] == 0 for s in checked["sweep"])
    run_asr("eval-stream", *args, "--out", report, "--no-verify")
    plain = json.loads(report.read_text())
    assert not plain["verified"] and max(s["false_accepts_per_hour"] + (s["recall"] or 0) for s in plain["sweep"]) > 0


def test_a_broken_verifier_is_named(verified_export, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(verified_export, broken)
    (broken / VERIFIER_DIR / HEAD_FILE).unlink()
    with pytest.raises(VerifierError, match=r"head\.npz: missing"):
        KeywordSpotter.from_export(broken)
    shutil.copytree(verified_export / VERIFIER_DIR, broken / VERIFIER_DIR, dirs_exist_ok=True)
    (broken / VERIFIER_DIR / "embedding_model.tflite").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match=r"embedding_model\.tflite: not a TFLite model"):
        Verifier.from_export(broken)
    (broken / VERIFIER_DIR / CONFIG_FILE).write_text('{"labels": []}')
    with pytest.raises(VerifierError, match=r"verifier\.json: not a verifier config"):
        Verifier.from_export(broken)


def test_a_ctc_export_gets_no_verifier(phone_export, commands_corpus, tmp_path):
    proc = run_asr("verifier", phone_export, "--data", commands_corpus, "--work", tmp_path, check=False)
    assert proc.returncode == 2 and "a CTC export" in proc.stderr


def test_real_speech_false_accepts_are_counted_after_the_check(verified_export, sentences_corpus, tmp_path):
    import subprocess
    import sys

    from asr.runtime.bundle import Thresholds, save_thresholds

    reports = {}
    for threshold in (0.0, 1.01):
        export = with_threshold(verified_export, tmp_path, threshold)
        save_thresholds(export, Thresholds(0.05, {}, "test: low, so the tiny model fires"))
        out = tmp_path / f"{threshold}.json"
        cmd = [sys.executable, "-m", "bench.real_false_accepts", str(export), "--speech", str(sentences_corpus)]
        subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True)
        reports[threshold] = json.loads(out.read_text())
    assert reports[0.0]["verified"] and reports[0.0]["all_keywords_saved"]["false_accepts"] > 0
    assert reports[1.01]["all_keywords_saved"]["false_accepts"] == 0


def test_training_again_gives_the_same_verifier(verified_export, commands_corpus, sentences_corpus, tmp_path):
    again = tmp_path / "again"
    shutil.copytree(verified_export, again)
    shutil.rmtree(again / VERIFIER_DIR)
    speech = ("--speech", sentences_corpus, "--work", tmp_path / "work")
    run_asr("verifier", again, "--data", commands_corpus, *speech, *NEAR_MISS_CLIPS)
    first, second = (np.load(e / VERIFIER_DIR / HEAD_FILE) for e in (verified_export, again))
    assert all(np.array_equal(first[k], second[k]) for k in first.files)


def test_a_missing_speech_embedding_says_how_to_set_it_up(kws_export, commands_corpus, tmp_path):
    from asr.train.verifier import train_verifier

    with pytest.raises(VerifierError, match=r"melspectrogram\.tflite: missing; run tools/setup\.sh"):
        train_verifier(kws_export, commands_corpus, work=tmp_path / "work", embedding_home=tmp_path / "nothing")
    assert not (kws_export / VERIFIER_DIR).exists()


def test_the_check_curve_runs_from_the_model_alone_to_the_saved_check(
    verified_export, commands_corpus, sentences_corpus, tmp_path
):
    """bench.verifier_curve: at check 0 every detection passes (the counts of --no-verify), at the head's saved
    threshold the counts are bench.real_false_accepts' with the verifier, and a stricter check never passes more."""
    import subprocess
    import sys

    from asr.audio import write_audio
    from asr.data.stream import make_stream, write_events
    from asr.runtime.bundle import Manifest, Thresholds, save_thresholds

    export = tmp_path / "export"
    shutil.copytree(verified_export, export)
    save_thresholds(export, Thresholds(0.05, {}, "test: low, so the tiny model fires"))
    stream = tmp_path / "stream"
    stream.mkdir()
    words = Manifest.read(export).keywords
    audio, events = make_stream(commands_corpus, words, minutes=0.5, seed=1, split="train")
    write_audio(stream / "stream.wav", audio, 16000)
    write_events(stream / "events.csv", events)

    def run(module: str, *args) -> dict:
        out = tmp_path / f"{module}{len(args)}.json"
        cmd = [sys.executable, "-m", f"bench.{module}", str(export), "--speech", str(sentences_corpus), *args]
        subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True)
        return json.loads(out.read_text())

    plain, checked = run("real_false_accepts", "--no-verify"), run("real_false_accepts")
    curve = run("verifier_curve", "--stream", str(stream), "--plot", str(tmp_path / "curve.png"))
    rows = {r["check"]: r for r in curve["curves"][0]["rows"]}
    assert plain["all_keywords_saved"]["false_accepts"] > 0, "the test needs detections to check"
    assert rows[0.0]["false_accepts"] == plain["all_keywords_saved"]["false_accepts"]
    assert rows[0.0]["wake_false_accepts"] == plain["wake_word"]["false_accepts"]
    saved = Verifier.from_export(export).config.threshold
    assert rows[saved]["false_accepts"] == checked["all_keywords_saved"]["false_accepts"]
    fa = [r["false_accepts"] for r in curve["curves"][0]["rows"]]
    assert fa == sorted(fa, reverse=True)
    assert (tmp_path / "curve.png").stat().st_size > 0
