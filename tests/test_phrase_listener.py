"""Wake words defined by text for the Pi (asr phrases, asr.runtime.phrase_listener): synthesized at set-up, learnt
on the real-speech embedding, heard in a stream."""

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from asr.data.speech_commands import SpeechCommands
from asr.runtime.phrase_listener import (
    HOP,
    PHRASES_CONFIG,
    PHRASES_DIR,
    EmbeddingStream,
    PhraseListener,
    PhraseSetupError,
)
from asr.runtime.verifier import EMBEDDING_FRAMES, EMBEDDING_STEP, HEAD_FILE
from asr.train.phrase_listener import (
    DEFAULT_THRESHOLD,
    FOLDS,
    MAX_THRESHOLD,
    TARGET_FA_PER_HOUR,
    choose_threshold,
    false_accepts,
)
from tests.fixtures_export import run_asr

PHRASE = "stop"  # a word of the tiny corpus: its clips leave the negatives, and its test clips are a voice never heard


@pytest.fixture(scope="module")
def phrase_setup(kws_export, commands_corpus, sentences_corpus, tmp_path_factory):
    """(export, set-up report) of the two phrases, with the tiny sentences' voices as the real speech."""
    export = tmp_path_factory.mktemp("phrases") / "kws"
    shutil.copytree(kws_export, export)
    work = export.parent / "work"
    proc = run_asr(
        "phrases", export, "--keyword", PHRASE, "--keyword", "Hey  Window",
        "--commands", commands_corpus, "--sentences", sentences_corpus, "--speech", sentences_corpus, "--work", work,
    )  # fmt: skip
    report = json.loads(proc.stdout[: proc.stdout.rindex("}") + 1])
    assert report["phrases"] == [PHRASE, "hey window"]
    return export, report


@pytest.fixture(scope="module")
def phrase_export(phrase_setup):
    return phrase_setup[0]


def clip_scores(listener: PhraseListener, clip: np.ndarray) -> np.ndarray:
    """The highest score of each phrase while `clip` plays, between 1 s of quiet before and after it."""
    quiet = np.zeros(listener.sample_rate, dtype=np.float32) + 1e-4
    listener.reset()
    return np.max([s for _, s in listener.listen(np.concatenate([quiet, clip, quiet]))], axis=0)


def test_the_phrases_are_written_whole(phrase_export):
    home = phrase_export / PHRASES_DIR
    assert sorted(p.name for p in home.iterdir()) == sorted(
        ["melspectrogram.tflite", "embedding_model.tflite", "LICENSE", HEAD_FILE, PHRASES_CONFIG]
    )
    assert not list(phrase_export.glob(f".{PHRASES_DIR}-*")), "the staging directory is left behind"
    config = json.loads((home / PHRASES_CONFIG).read_text())
    assert config["labels"] == ["_silence_", "_unknown_", PHRASE, "hey window"]
    assert config["voices"] >= 2 and config["rows"] >= 7  # two words may need a longer crop than one


def test_a_stream_scores_the_same_however_it_is_chunked(phrase_export):
    audio = np.random.default_rng(0).standard_normal(3 * 16000).astype(np.float32) * 0.1
    whole = list(PhraseListener.from_export(phrase_export, [PHRASE]).listen(audio))
    listener = PhraseListener.from_export(phrase_export, [PHRASE])
    pieces = []
    for i in range(0, len(audio), 777):
        pieces += listener.listen(audio[i : i + 777])
    assert len(whole) == len(audio) // HOP - (listener.config.rows + 10 - 1) + 1  # the first embedding: 10th hop
    assert [t for t, _ in pieces] == [t for t, _ in whole]
    # The embeddings are of the whole recording's mel frames, the last 76 when a hop completes (the first hop gives 5).
    stream = EmbeddingStream(listener.stream.embedding)
    rows = np.stack([row for i in range(0, len(audio), 777) for row in stream.push(audio[i : i + 777])])
    mels = stream.embedding.mels(audio)
    ends = range(EMBEDDING_FRAMES + 1, len(mels) + 1, EMBEDDING_STEP)
    np.testing.assert_array_equal(
        rows, np.concatenate([stream.embedding.embed_mels(mels[e - EMBEDDING_FRAMES : e]) for e in ends])
    )
    np.testing.assert_allclose(np.stack([s for _, s in pieces]), np.stack([s for _, s in whole]), atol=1e-5)
    # The public face: int16 PCM chunks fire where float32 does (a threshold everything passes: once a refractory
    # period).
    from asr import PhraseListener as Public

    pcm = np.round(audio * 32767).astype(np.int16)
    public = Public.from_export(phrase_export, [PHRASE], thresholds={PHRASE: -1e9})
    fired = [d.time_s for i in range(0, len(pcm), 1600) for d in public.predict(pcm[i : i + 1600])]
    expected = [whole[0][0]]
    for t, _ in whole:
        if t - expected[-1] >= public.config.refractory_s:
            expected.append(t)
    assert fired == pytest.approx(expected)
    # It fires only the phrases it was asked for, not every phrase set up beside them.
    everything = {PHRASE: -1e9, "hey window": -1e9}
    for asked in ([PHRASE], [PHRASE, "hey window"]):
        listener = Public.from_export(phrase_export, asked, thresholds=everything)
        assert {d.label for i in range(0, len(pcm), 1600) for d in listener.predict(pcm[i : i + 1600])} == set(asked)


def test_each_threshold_is_raised_until_real_speakers_it_never_heard_are_quiet(phrase_setup):
    export, report = phrase_setup
    thresholds = json.loads((export / PHRASES_DIR / PHRASES_CONFIG).read_text())["thresholds"]
    real = report["real_speech"]
    assert real["folds"] == FOLDS and real["hours"] > 0
    for phrase, measured in real["per_phrase"].items():
        assert thresholds[phrase] == measured["threshold"] >= DEFAULT_THRESHOLD
        assert measured["false_accepts_per_hour_held_out"] <= TARGET_FA_PER_HOUR or thresholds[phrase] == MAX_THRESHOLD
    # The chooser on an hour of scores: a burst of hops fires once a refractory period; the threshold is the lowest
    # of its grid with at most TARGET_FA_PER_HOUR (here: none in the hour).
    scores = np.full(round(3600 * 16000 / HOP), -5.0)
    scores[[100, 101, 102]], scores[5000] = 9.0, 12.0
    assert false_accepts(scores, DEFAULT_THRESHOLD) == 2 and false_accepts(scores, 10.0) == 1
    assert choose_threshold(scores, 1.0) == (12.25, 0.0)
    assert choose_threshold(scores, 4.0) == (DEFAULT_THRESHOLD, 0.5)  # two in four hours


def test_the_phrase_is_heard_in_a_voice_it_never_heard(phrase_export, commands_corpus, commands_keywords):
    listener = PhraseListener.from_export(phrase_export, [PHRASE])
    column = listener.config.phrases.index(PHRASE)
    test = SpeechCommands(commands_corpus, "testing", commands_keywords)
    clips = [test[i] for i in range(len(test.items))]
    said = [clip_scores(listener, c)[column] for c, label in clips if test.labels[label] == PHRASE]
    others = [clip_scores(listener, c)[column] for c, label in clips if test.labels[label] not in (PHRASE, "_silence_")]
    assert len(said) >= 3 and len(others) >= 10
    # Ranked by the phrase's score, its own clips come before most other words' (1.0: all of them).
    ranked_above = np.mean([[s > o for o in others] for s in said])
    assert ranked_above > 0.8, (said, sorted(others)[-5:])


def test_the_demo_listens_for_phrases_set_up_and_names_what_is_missing(phrase_export, kws_export, tmp_path):
    from asr.audio import write_audio

    wav = tmp_path / "quiet.wav"
    write_audio(wav, np.random.default_rng(0).standard_normal(3 * 16000).astype(np.float32) * 1e-3, 16000)
    heard = run_asr("demo", phrase_export, "--file", wav, "--keyword", PHRASE, "--json")
    assert "synthesized voices" in heard.stderr and "detection(s) in 3.0 s of audio" in heard.stderr
    missing = run_asr("demo", phrase_export, "--file", wav, "--keyword", "gopher", check=False)
    assert missing.returncode == 2 and "['gopher'] not set up" in missing.stderr and "asr phrases" in missing.stderr
    none = run_asr("demo", kws_export, "--file", wav, "--keyword", PHRASE, check=False)
    assert none.returncode == 2 and "no phrases set up" in none.stderr
    with pytest.raises(PhraseSetupError, match="not set up"):
        PhraseListener.from_export(phrase_export, [PHRASE], thresholds={"gopher": 1.0})


def test_a_phrase_wakes_and_the_next_one_acts(phrase_export, tmp_path):
    """`asr demo --keyword ... --wake-then-command --wake-word PHRASE --actions FILE`: a smart speaker defined by text.
    At a threshold everything passes, both phrases fire once a refractory period, the wake phrase first."""
    from asr.audio import write_audio

    wav, log, actions = tmp_path / "noise.wav", tmp_path / "acted.txt", tmp_path / "actions.toml"
    write_audio(wav, np.random.default_rng(0).standard_normal(5 * 16000).astype(np.float32) * 0.1, 16000)
    actions.write_text(f'"hey window" = "echo $ASR_LABEL >> {log}"\n')
    phrases = ["--keyword", PHRASE, "--keyword", "Hey Window", "--threshold=-1e9"]
    heard = run_asr(
        "demo", phrase_export, "--file", wav, *phrases, "--wake-then-command", "--wake-word", PHRASE,
        "--actions", actions, "--json",
    )  # fmt: skip
    labels = [json.loads(line)["label"] for line in heard.stdout.splitlines()]
    assert len(labels) >= 4 and labels == [PHRASE, "hey window"] * (len(labels) // 2)
    for _ in range(100):  # the actions run in the background
        if log.is_file() and log.read_text().count("\n") == len(labels) // 2:
            break
        time.sleep(0.05)
    assert log.read_text().splitlines() == ["hey window"] * (len(labels) // 2)
    # The other phrase as the wake word: the first PHRASE (before any wake) is dropped, then they alternate.
    other = run_asr("demo", phrase_export, "--file", wav, *phrases, "--wake-then-command", "--wake-word", "hey window")
    gated = [line.split()[1] for line in other.stdout.splitlines()]
    assert gated[0] == "hey" and all(a != b for a, b in zip(gated, gated[1:], strict=False)) and PHRASE in gated
    unnamed = run_asr("demo", phrase_export, "--file", wav, *phrases, "--wake-then-command", check=False)
    assert unnamed.returncode == 2 and "needs --wake-word" in unnamed.stderr


def test_the_benchmark_sweeps_thresholds_on_a_stream_and_on_real_speech(
    phrase_export, commands_corpus, sentences_corpus, tmp_path
):
    run_asr(
        "data", "stream", "--commands", commands_corpus, "--minutes", "1", "--keywords", PHRASE, "--out-dir", tmp_path
    )  # fmt: skip
    cmd = [sys.executable, "-m", "bench.phrases", str(phrase_export), str(tmp_path), "--keyword", PHRASE]
    printed = subprocess.run([*cmd, "--speech", str(sentences_corpus)], check=True, capture_output=True, text=True)
    sweep = np.array(json.loads((tmp_path / f"phrases_{phrase_export.name}.json").read_text())[PHRASE])
    thresholds, recall, _, real = sweep.T
    assert np.all(np.diff(thresholds) > 0) and recall[0] > 0 and recall[0] >= recall[-1]
    # Fewer false accepts on the real speech as the threshold rises (once a refractory period: never more).
    assert real[0] > 0 and np.all(np.diff(real) <= 0)
    assert f"| {PHRASE} | " in printed.stdout and "FA/h of real speech" in printed.stdout


def test_set_up_refuses_what_it_cannot_use(phone_export, kws_export, tmp_path):
    ctc = run_asr("phrases", phone_export, "--keyword", PHRASE, check=False)
    assert ctc.returncode == 2 and "spots phrases by its own units" in ctc.stderr
    missing = run_asr("phrases", tmp_path / "nowhere", "--keyword", PHRASE, check=False)
    assert missing.returncode == 2 and "not an export directory" in missing.stderr
    same = run_asr("phrases", kws_export, "--keyword", "Stop", "--keyword", "stop", check=False)
    assert same.returncode == 2 and "distinct phrases" in same.stderr
    assert not (kws_export / PHRASES_DIR).exists()
