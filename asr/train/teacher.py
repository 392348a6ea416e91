"""A teacher that has heard real voices, for training only.

The corpus is synthetic; a listener trained on real speech knows how words sound across real speakers. Google's
speech_embedding model (Apache 2.0; trained on real speech, the front end of openWakeWord), as openWakeWord 0.5.1's
wheel ships it in ONNX, maps each clip to a 96-dimensional embedding. The keyword model's training-only `embedder`
head predicts it from the pooled encoder output (`train.teacher` weighs that loss), so the features it learns
from synthetic voices lean towards those that separate words for real ones. Nothing of the teacher is exported.

The teacher sees each clip clean, once: its embeddings are cached next to the corpus
(`.teacher_speech_embedding.npz`, keyed by path, size and modification time); the student sees the clip augmented.
"""

from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path

import numpy as np

from asr.audio import read_audio
from asr.files import write_bytes_atomic

CACHE_NAME = ".teacher_speech_embedding.npz"
DIM = 96  # embedding size
_WINDOW, _HOP = 76, 8  # mel frames per embedding, and between embeddings (openWakeWord's settings)
_PAD = 8000  # samples of silence on each side of a 1 s clip: 16 embeddings that all see some of it
_BATCH = 64


def model_dir() -> Path:
    """Where openWakeWord's wheel keeps the two ONNX models (found without importing the package)."""
    spec = importlib.util.find_spec("openwakeword")
    folder = Path(next(iter(spec.submodule_search_locations))) / "resources" / "models" if spec else None
    if folder is None or not (folder / "embedding_model.onnx").is_file():
        raise FileNotFoundError(
            "train.teacher needs Google's speech_embedding model from openWakeWord 0.5.1's wheel: "
            "run tools/setup.sh (it installs openwakeword==0.5.1 without dependencies)"
        )
    return folder


class SpeechEmbedding:
    """1 s clips [N, 16000] -> mean teacher embeddings [N, 96], with onnxruntime."""

    def __init__(self, threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        folder = model_dir()
        self.mel = ort.InferenceSession(str(folder / "melspectrogram.onnx"), options)
        self.embed = ort.InferenceSession(str(folder / "embedding_model.onnx"), options)

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        audio = np.pad(clips, ((0, 0), (_PAD, _PAD))).astype(np.float32) * 32767  # the model wants int16 levels
        # One clip at a time: the mel model floors its log at the loudest value of the whole batch, so a batch
        # would make each clip's features depend on its neighbours. openWakeWord's scaling after it.
        mel = np.stack([self.mel.run(None, {"input": a[None]})[0].reshape(-1, 32) for a in audio]) / 10 + 2
        starts = range(0, mel.shape[1] - _WINDOW + 1, _HOP)
        windows = np.stack([mel[:, s : s + _WINDOW] for s in starts], 1).reshape(-1, _WINDOW, 32, 1)
        out = self.embed.run(None, {"input_1": windows.astype(np.float32)})[0]
        return out.reshape(len(clips), len(starts), DIM).mean(axis=1)


def corpus_embeddings(root: str | Path, paths: list[Path], clip_samples: int) -> np.ndarray:
    """The teacher's embedding of every clip in `paths` [len(paths), 96], computed once and cached under `root`."""
    from tqdm import tqdm

    root = Path(root)
    cache_path = root / CACHE_NAME
    keys = [_key(root, p) for p in paths]
    cached: dict[str, np.ndarray] = {}
    if cache_path.is_file():
        with np.load(cache_path) as z:
            cached = dict(zip(z["keys"].tolist(), z["embeddings"], strict=True))
    todo = [i for i, k in enumerate(keys) if k not in cached]
    if todo:
        teacher = SpeechEmbedding()
        for s in tqdm(range(0, len(todo), _BATCH), desc="teacher embeddings", unit="batch"):
            batch = todo[s : s + _BATCH]
            clips = np.stack([_fit(read_audio(paths[i]), clip_samples) for i in batch])
            for i, e in zip(batch, teacher(clips), strict=True):
                cached[keys[i]] = e
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(list(cached)), embeddings=np.stack(list(cached.values())))
        write_bytes_atomic(cache_path, buffer.getvalue())
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def _key(root: Path, path: Path) -> str:
    stat = path.stat()
    return f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}"


def _fit(wave: np.ndarray, samples: int) -> np.ndarray:
    return np.pad(wave[:samples], (0, max(0, samples - len(wave))))
