"""Piper voices (VITS, trained on one recorded speaker each) as a synthesis engine, made deterministic.

A voice comes from PyPI as a package holding `data/<name>.onnx` and its `.onnx.json` ([piper] voices in the recipe
names the package); `piper-tts` phonemizes the text with its own espeak-ng. A VITS voice samples noise inside
the graph (two RandomNormalLike nodes: the durations' and the spectrum's), so the same text never sounds the same
twice and a corpus would differ from run to run. `seeded_noise` rewrites each node into a slice of a noise input,
and every clip draws that noise from its own settings: the same utterance gives the same audio, in any order.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from asr.audio import resample_audio
from asr.errors import MissingError

INSTALL_HINT = "run tools/setup.sh (it installs piper-tts and the voices with pip --no-deps)"
NOISE_CHANNELS = 192  # the widest noise a VITS voice draws (its spectrum's), its rows before the frames
NOISE_FRAMES = 4096  # more spectrogram frames than any utterance of the corpora has (47 s at 22.05 kHz)


class PiperSetupError(MissingError):
    """piper-tts or a Piper voice package is not installed; the message says what to install."""


def model_path(package: str) -> Path:
    """The voice's .onnx file inside its package (the package's only one)."""
    try:
        found = sorted(Path(str(files(package) / "data")).glob("*.onnx"))
    except ModuleNotFoundError:
        found = []
    if not found:
        raise PiperSetupError(f"the Piper voice package {package!r} is not installed (or has no .onnx): {INSTALL_HINT}")
    return found[0]


def check_installed(package: str) -> None:
    try:
        import piper  # noqa: F401  (piper-tts: its phonemizer)
    except ImportError:
        raise PiperSetupError(f"piper-tts is not installed: {INSTALL_HINT}") from None
    model_path(package)


def seeded_noise(model):
    """Each RandomNormalLike(x) of an onnx.ModelProto becomes Slice(noise_k, 0, Shape(x)): input `noise_k`
    ([1, NOISE_CHANNELS, NOISE_FRAMES] standard normal) gives the noise the graph drew itself."""
    import onnx
    from onnx import TensorProto, helper

    graph = model.graph
    nodes = list(graph.node)
    zeros = helper.make_tensor("noise_starts", TensorProto.INT64, [3], [0, 0, 0])
    graph.initializer.append(zeros)
    k = 0
    for i, node in enumerate(nodes):
        if node.op_type != "RandomNormalLike":
            continue
        name = f"noise_{k}"
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, NOISE_CHANNELS, NOISE_FRAMES]))
        shape = helper.make_node("Shape", [node.input[0]], [f"{name}_shape"])
        nodes[i : i + 1] = [shape, helper.make_node("Slice", [name, "noise_starts", f"{name}_shape"], node.output)]
        k += 1
    graph.ClearField("node")
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model, k


class Voice:
    """One Piper voice, loaded once per process."""

    def __init__(self, package: str) -> None:
        import onnx
        import onnxruntime
        from piper import PiperVoice

        check_installed(package)
        path = model_path(package)
        model, self.noises = seeded_noise(onnx.load(str(path)))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # synthesis runs one worker process per core
        session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.voice = PiperVoice.load(path)  # its config and phonemizer; the session is ours
        self.session, self.sample_rate = session, self.voice.config.sample_rate

    def say(self, text: str, stretch: float, seed: int) -> np.ndarray:
        """16 kHz float32 audio of `text`, `stretch` times as long, with the voice's own noise scales drawn from
        `seed`."""
        ids = [i for sentence in self.voice.phonemize(text) for i in self.voice.phonemes_to_ids(sentence)]
        rng, config = np.random.default_rng(seed), self.voice.config
        feeds = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([config.noise_scale, stretch, config.noise_w_scale], dtype=np.float32),
        }
        for k in range(self.noises):
            feeds[f"noise_{k}"] = rng.standard_normal((1, NOISE_CHANNELS, NOISE_FRAMES), dtype=np.float32)
        audio = self.session.run(None, feeds)[0].reshape(-1)
        return resample_audio(audio.astype(np.float32), self.sample_rate, 16000)


@cache
def voice(package: str) -> Voice:
    return Voice(package)


def seed_of(*parts: object) -> int:
    """A clip's noise seed from what determines the clip (its voice and settings), never from run order."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")
