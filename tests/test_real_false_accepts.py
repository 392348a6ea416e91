"""bench/real_false_accepts.py: false accepts on real speech, counted as the streaming detector fires."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from asr.data import librispeech
from asr.data.librispeech import LibriSpeech
from asr.runtime.bundle import Thresholds, save_thresholds
from asr.runtime.spotter import KeywordSpotter
from bench import real_false_accepts


def test_false_accepts_are_what_the_streaming_detector_fires(kws_export, sentences_corpus, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(kws_export, export)
    save_thresholds(export, Thresholds(0.1, {"marvin": 0.05}, "test"))  # low: a tiny model then fires on some
    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "bench.real_false_accepts", str(export), "--speech", str(sentences_corpus)]
    printed = subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True, text=True).stdout
    report = json.loads(out.read_text())

    # The same session played through the detector as `asr demo` runs it, at the same thresholds.
    speech = LibriSpeech(sentences_corpus, "test-clean")
    rng = np.random.default_rng(0)
    pause = int(librispeech.PAUSE_S * 16000)
    chunks = []
    for i in range(len(speech)):
        chunks += [10 ** (librispeech.PAUSE_DBFS / 20) * rng.standard_normal(pause).astype(np.float32)]
        chunks += [speech[i][0]]
    fired = list(KeywordSpotter.from_export(export).detector.run(chunks))
    assert fired, "the test needs some detections to compare"
    assert report["all_keywords_saved"]["false_accepts"] == len(fired)
    assert report["wake_word"]["false_accepts"] == sum(d.label == "marvin" for d in fired)
    assert report["hours"] == round(sum(len(c) for c in chunks) / 16000 / 3600, 4)
    assert report["all_keywords_saved"]["per_hour"] == pytest.approx(len(fired) / report["hours"], rel=0.02)
    assert sum(report["all_keywords_saved"]["per_source"].values()) == len(fired)
    assert report["utterances"] == len(speech) and f"{len(fired)} |" in printed
    # Each false accept named with the utterance it was heard in and what that utterance says.
    said = {utt_id: text for _, text, utt_id in speech.items}
    listed = report["false_accepts"]
    assert [(a["label"], a["time_s"]) for a in listed] == [(d.label, round(d.time_s, 2)) for d in fired]
    assert all(a["transcript"] == said[a["utterance"]] for a in listed)

    save_thresholds(export, Thresholds(1.01, {}, "test"))  # above any posterior: silent
    subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True)
    assert json.loads(out.read_text())["all_keywords_shared"]["false_accepts"] == 0


def test_thresholds_chosen_on_real_speech_are_the_lowest_that_hold_there(kws_export, sentences_corpus, tmp_path):
    """--choose-on: the lowest grid thresholds with no false accept (targets 0) on that split; one step lower fires."""
    export = tmp_path / "export"
    shutil.copytree(kws_export, export)
    save_thresholds(export, Thresholds(0.1, {"marvin": 0.05}, "test"))
    out = tmp_path / "chosen.json"
    speech = ["--speech", str(sentences_corpus), "--split", "train-clean-100"]
    cmd = [sys.executable, "-m", "bench.real_false_accepts", str(export), *speech, "--out", str(out)]
    targets = ["--choose-on", "train-clean-100", "--wake-target", "0", "--keywords-target", "0"]
    subprocess.run([*cmd, *targets], check=True, capture_output=True)
    report = json.loads(out.read_text())
    shared, own = report["thresholds"]["shared"], report["thresholds"]["own"]
    assert report["thresholds"]["chosen_on"] == "train-clean-100"
    assert report["all_keywords_saved"]["false_accepts"] == 0 and shared in real_false_accepts.GRID
    lower = float(real_false_accepts.GRID[list(real_false_accepts.GRID).index(shared) - 1])
    assert lower < shared, "the tiny model should fire somewhere above the grid's first threshold"
    save_thresholds(export, Thresholds(lower, {"marvin": max(lower, own["marvin"])}, "test"))
    subprocess.run(cmd, check=True, capture_output=True)
    assert json.loads(out.read_text())["all_keywords_saved"]["false_accepts"] > 0
