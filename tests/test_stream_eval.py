"""`asr data stream` and `asr eval-stream`: a generated labelled stream, and metrics that add up."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.audio import read_audio
from asr.cli import main
from asr.evaluation.metrics import THRESHOLDS, Event, decide, match, read_events
from asr.evaluation.stream import score_recording
from asr.labels import keywords
from asr.runtime.bundle import Manifest, Thresholds, load_exported, save_thresholds
from asr.runtime.detector import Decider
from asr.runtime.spotter import KeywordSpotter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stream_files(commands_corpus, kws_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("stream")
    words = Manifest.read(kws_export).keywords
    cmd = [sys.executable, "-m", "asr.cli", "data", "stream", "--commands", str(commands_corpus), "--minutes", "1"]
    subprocess.run([*cmd, "--keywords", *words, "--seed", "3", "--out-dir", str(out)], check=True, capture_output=True)
    return out / "stream.wav", out / "events.csv"


def test_make_stream_is_deterministic_and_well_formed(commands_corpus, kws_export, stream_files, tmp_path):
    wav, events_csv = stream_files
    words = Manifest.read(kws_export).keywords
    cmd = [sys.executable, "-m", "asr.cli", "data", "stream", "--commands", str(commands_corpus), "--minutes", "1"]
    subprocess.run([*cmd, "--keywords", *words, "--seed", "3", "--out-dir", str(tmp_path)], check=True)
    assert (tmp_path / "stream.wav").read_bytes() == wav.read_bytes()
    assert (tmp_path / "events.csv").read_text() == events_csv.read_text()

    audio, events = read_audio(wav), read_events(events_csv)
    assert len(audio) == 60 * 16000 and np.abs(audio).max() < 1.0
    assert all(0 <= a.onset_s < a.offset_s <= b.onset_s for a, b in zip(events, events[1:], strict=False))
    spoken = [e.label for e in events if e.label in words]
    assert len(spoken) >= 5 and set(spoken) <= set(words)
    assert any(e.label == "_unknown_" for e in events)


def test_eval_stream_report_adds_up(kws_export, stream_files, tmp_path, capsys):
    wav, events_csv = stream_files
    report_path, plot_path = tmp_path / "report.json", tmp_path / "det.png"
    argv = ["eval-stream", str(kws_export), str(wav), str(events_csv), "--out", str(report_path)]
    assert main([*argv, "--plot", str(plot_path)]) == 0
    assert "overall" in capsys.readouterr().out
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(report_path.read_text())

    chosen, hours = report["chosen"], report["duration_s"] / 3600
    assert report["duration_s"] == pytest.approx(60.0)
    assert [s["threshold"] for s in report["sweep"]] == THRESHOLDS.tolist()
    assert chosen["threshold"] in THRESHOLDS.tolist()
    per_label = chosen["per_label"].values()
    for key in ("events", "hits", "false_accepts"):
        assert chosen["overall"][key] == sum(s[key] for s in per_label)
    for s in [*per_label, chosen["overall"]]:
        assert 0 <= s["hits"] <= s["events"]
        if s["events"]:
            assert s["recall"] == pytest.approx(s["hits"] / s["events"])
        assert s["false_accepts_per_hour"] == pytest.approx(s["false_accepts"] / hours)
    assert chosen["overall"]["events"] == report["keyword_events"]
    point = next(s for s in report["sweep"] if s["threshold"] == chosen["threshold"])
    assert point["recall"] == pytest.approx(chosen["overall"]["recall"])
    assert point["false_reject_rate"] == pytest.approx(1 - point["recall"])


def test_events_where_the_detector_fired_score_full_recall_and_no_false_accepts(kws_export, stream_files):
    wav, _ = stream_files
    detector = KeywordSpotter.from_export(kws_export).detector
    times, posteriors = score_recording(detector, read_audio(wav))
    threshold = 0.5
    found = decide(times, posteriors, detector.labels, threshold, detector.decider.refractory_s)
    assert found, "no detection in the generated stream"
    every_window = Decider(
        detector.labels, dict.fromkeys(keywords(detector.labels), threshold), detector.decider.refractory_s
    )
    assert found == [d for d in map(every_window.update, times, posteriors) if d is not None]  # the skipping is exact
    events = [Event(d.time_s - 0.5, d.label, d.time_s - 0.2) for d in found]
    result = match(found, events, detector.labels, duration_s=60.0, window_s=1.0, max_delay_s=1.0)
    assert result["overall"]["recall"] == 1.0 and result["overall"]["false_accepts"] == 0
    assert all(0.49 < latency < 0.51 for latency in [result["overall"]["latency_mean_s"]])
    half = match(found, events[::2], detector.labels, duration_s=60.0, window_s=1.0, max_delay_s=1.0)
    assert half["overall"]["hits"] == len(events[::2])
    assert half["overall"]["false_accepts"] == len(events) - len(events[::2])
    assert half["overall"]["false_accepts_per_hour"] == pytest.approx(half["overall"]["false_accepts"] * 60)


def test_a_recording_without_keywords_measures_false_accepts_only(kws_export, stream_files, tmp_path, capsys):
    header_only = tmp_path / "none.csv"
    header_only.write_text("onset_s,label,offset_s\n")
    report_path = tmp_path / "report.json"
    argv = ["eval-stream", str(kws_export), str(stream_files[0]), str(header_only), "--out", str(report_path)]
    assert main([*argv, "--plot", str(tmp_path / "fa.png")]) == 0
    report = json.loads(report_path.read_text())
    assert report["keyword_events"] == 0 and report["chosen"]["overall"]["recall"] is None
    assert all(s["recall"] is None and s["false_reject_rate"] is None for s in report["sweep"])
    fewest = min(s["false_accepts_per_hour"] for s in report["sweep"])
    assert report["chosen"]["overall"]["false_accepts_per_hour"] == fewest
    assert (tmp_path / "fa.png").stat().st_size > 0


def test_bad_events_file_names_the_line(tmp_path, kws_export, stream_files, capsys):
    bad = tmp_path / "events.csv"
    with bad.open("w", newline="") as f:
        csv.writer(f).writerows([["onset_s", "label", "offset_s"], ["1.0", "yes", "1.5"], ["soon", "no"]])
    with pytest.raises(ValueError, match=r"events\.csv:3: expected onset_s,label"):
        read_events(bad)
    assert main(["eval-stream", str(kws_export), str(stream_files[0]), str(bad)]) == 2
    assert "events.csv:3" in capsys.readouterr().err


def test_saved_threshold_is_what_the_demo_uses(kws_export, stream_files, tmp_path, capsys):
    """`eval-stream --save-threshold` writes the chosen threshold into the manifest; `asr demo` without
    --threshold then detects exactly what it detects with that threshold given."""
    wav, events_csv = stream_files
    export = shutil.copytree(kws_export, tmp_path / "export")
    argv = ["eval-stream", str(export), str(wav), str(events_csv), "--out", str(tmp_path / "r.json")]
    assert main([*argv, "--target-recall", "0.5", "--save-threshold"]) == 0
    chosen = json.loads((tmp_path / "r.json").read_text())["chosen"]["threshold"]
    assert Manifest.read(export).thresholds.threshold == chosen
    assert load_exported(export)[1].labels == Manifest.read(kws_export).labels  # still a valid bundle

    def demo(*extra) -> str:
        capsys.readouterr()
        assert main(["demo", str(export), "--file", str(wav), "--json", *extra]) == 0
        return capsys.readouterr().out

    assert demo() == demo("--threshold", str(chosen))
    save_thresholds(export, Thresholds(0.05, {}, "a test"))  # far from the default 0.7: the two must detect differently
    assert demo() == demo("--threshold", "0.05") != demo("--threshold", "0.7")


def test_wake_word_gets_a_threshold_of_its_own(kws_export, stream_files, tmp_path, capsys):
    """--wake-fa-per-hour picks the wake word's best recall within its own false-accept budget, saves it beside
    the shared threshold, and `asr demo` then detects what the two thresholds given by hand detect."""
    wav, events_csv = stream_files
    export = shutil.copytree(kws_export, tmp_path / "export")
    wake = Manifest.read(export).keywords[0]
    argv = ["eval-stream", str(export), str(wav), str(events_csv), "--out", str(tmp_path / "r.json")]
    assert main([*argv, "--wake-word", wake, "--wake-fa-per-hour", "60", "--save-threshold"]) == 0
    assert f"wake word {wake!r} at its own threshold" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    shared, own = report["chosen"]["threshold"], report["wake"]
    within = [s for s in own["sweep"] if s["false_accepts_per_hour"] <= 60]
    assert within, "the budget of 60 FA/h (one false accept in this 1-minute stream) is never met"
    assert own["false_accepts_per_hour"] <= 60 and own["recall"] == max(s["recall"] for s in within)
    assert own["false_accepts"] == min(s["false_accepts"] for s in within if s["recall"] == own["recall"])

    detector = KeywordSpotter.from_export(export).detector
    times, posteriors = score_recording(detector, read_audio(wav))
    found = decide(times, posteriors, detector.labels, shared, detector.decider.refractory_s, {wake: own["threshold"]})
    direct = match(found, read_events(events_csv), detector.labels, 60.0, 1.0, 1.0)["per_label"][wake]
    assert (direct["hits"], direct["false_accepts"]) == (own["hits"], own["false_accepts"])

    saved = Manifest.read(export).thresholds
    assert saved.threshold == shared and saved.label_thresholds == {wake: own["threshold"]}

    def demo(*extra) -> str:
        capsys.readouterr()
        assert main(["demo", str(export), "--file", str(wav), "--json", *extra]) == 0
        return capsys.readouterr().out

    assert demo() == demo("--threshold", str(shared), "--label-threshold", f"{wake}={own['threshold']}")
    save_thresholds(export, Thresholds(shared, {wake: 0.05}, "a test"))  # a wake threshold far below the shared one
    assert (
        demo()
        == demo("--threshold", str(shared), "--label-threshold", f"{wake}=0.05")
        != demo("--threshold", str(shared))
    )


def test_thresholds_chosen_on_one_stream_are_reported_on_another(kws_export, stream_files, tmp_path, capsys):
    """--at-saved-threshold reports at the manifest's thresholds: on the stream they were chosen on it repeats the
    choice exactly, wake word included; without saved thresholds it says so."""
    wav, events_csv = stream_files
    export = shutil.copytree(kws_export, tmp_path / "export")
    wake = Manifest.read(export).keywords[0]
    argv = ["eval-stream", str(export), str(wav), str(events_csv)]
    assert main([*argv, "--at-saved-threshold"]) == 2
    assert "no saved threshold" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "a.json"), "--wake-word", wake, "--wake-fa-per-hour", "60",
                 "--save-threshold"]) == 0  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "b.json"), "--at-saved-threshold"]) == 0
    chosen, wake_point = (json.loads((tmp_path / "a.json").read_text())[k] for k in ("chosen", "wake"))
    again = json.loads((tmp_path / "b.json").read_text())["chosen"]
    assert again["threshold"] == chosen["threshold"] and again["reason"].startswith("saved: shared")
    assert again["per_label"][wake]["hits"] == wake_point["hits"]
    assert again["per_label"][wake]["false_accepts"] == wake_point["false_accepts"]
