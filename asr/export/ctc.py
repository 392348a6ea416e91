"""Export a CTC (sentence) model to int8 TFLite through the loop route, with its units (pieces or phones), and check it.

The model runs on a fixed window (static shapes for TFLite Micro) and outputs per-frame log-probabilities; the
device slides it over longer audio with overlap (`asr.runtime.ctc_stream`). The manifest carries the tokenizer's
pieces and scores (a few KB; the sentencepiece model file is ~240 KB of normaliser tables the device does not need),
so the device decodes without torch or sentencepiece. Parity is judged where it matters: greedy transcripts of real
test utterances, int8 (ai-edge-litert and TFLite Micro) against PyTorch float on the same windows, and WER of each
against the references.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.config import Config
from asr.errors import InputError
from asr.export import flatbuffer, micro
from asr.export.loop import LoopExportError, check_exportable
from asr.export.manifest import tensor_info, tool_versions
from asr.export.pipeline import check_weights, model_report, staging
from asr.export.routes import convert_loop
from asr.export.words import write_word_files
from asr.features import log_mel
from asr.runtime.bundle import CTCUnits, Manifest
from asr.runtime.ctc import CTCError, Pieces, greedy
from asr.runtime.ctc_stream import CTCStream, WindowPlan, encoder_frames, silence_feature
from asr.runtime.host_interpreters import io_details
from asr.runtime.intent import load_grammar, requests
from asr.runtime.words import LEXICON_FILE, LM_FILE
from asr.text import PHONES, PhoneTokenizer, phonemes

DEFAULT_WINDOW_SECONDS = 3.0  # sentences of the generated corpus run 2-5 s; attention cost grows with the square
DEFAULT_OVERLAP_SECONDS = 1.0  # context shared by neighbouring windows (half on each side)
FLOAT_LOG_PROB_ATOL = 2e-2  # TFLite float32 against PyTorch, on log-probabilities
PHONE_SOURCE = "espeak-ng -v en-us -x, stress marks dropped (asr.text.PHONES)"


def window_plan(config: Config, window_s: float, overlap_s: float) -> tuple[Config, WindowPlan]:
    """The config with its feature window set to `window_s`, and the plan of windows every window - overlap."""
    if not 0 <= overlap_s < window_s:
        raise InputError(f"--overlap-seconds {overlap_s} must be at least 0 and below --window-seconds {window_s}")
    spec = dataclasses.replace(config.features, clip_seconds=window_s)
    strides = [2, config.model.subsampling // 2]
    stride = int(np.prod(strides))
    frame_s = spec.hop_length / spec.sample_rate
    hop = max(stride, int(round((window_s - overlap_s) / frame_s / stride)) * stride)
    plan = WindowPlan(spec.num_frames(spec.clip_samples), min(hop, spec.num_frames(spec.clip_samples)), strides)
    return dataclasses.replace(config, features=spec), plan


def utterance_windows(features: np.ndarray, plan: WindowPlan, pad: float) -> np.ndarray:
    """Every window the device would run over one utterance's features [frames, n_mels]."""
    out = []
    for start in plan.starts(len(features)):
        rows = features[start : start + plan.window_frames]
        filler = np.full((plan.window_frames - len(rows), features.shape[1]), pad, dtype=np.float32)
        out.append(np.concatenate([rows, filler]))
    return np.stack(out)


def torch_window_model(model: torch.nn.Module):
    """PyTorch on one window, as the exported model computes it: features [W, F] -> log-probs [T', V]."""

    def run(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))[None])[0].numpy()

    return run


def micro_window_model(path: Path, arena: int):
    """TFLite Micro on one window (int8 in and out, (de)quantized with the model's own parameters)."""
    from tflite_micro import runtime

    from asr.runtime.interpreter import dequantize, quantize

    interpreter = runtime.Interpreter.from_file(str(path), arena_size=arena)
    (i_scale, i_zero), (o_scale, o_zero) = ((t.scale, t.zero_point) for t in _io(path).values())

    def run(rows: np.ndarray) -> np.ndarray:
        interpreter.set_input(quantize(rows, i_scale, i_zero)[None], 0)
        interpreter.invoke()
        return dequantize(interpreter.get_output(0), o_scale, o_zero)[0]

    return run


def _io(path: Path) -> dict:
    i, o = io_details(path)
    return {"input": tensor_info(i), "output": tensor_info(o)}


def stream_log_probs(run, audio: np.ndarray, spec, plan: WindowPlan, units: int) -> np.ndarray:
    stream = CTCStream(run, spec, plan, units)
    return np.concatenate([stream.push(audio), stream.finish()])


def transcript_parity(
    model: torch.nn.Module,
    decode,
    units: int,
    utterances: list[tuple[np.ndarray, str]],
    spec,
    plan: WindowPlan,
    float_path: Path,
    int8_path: Path,
    arena: int,
) -> dict:
    """Greedy transcripts of each runtime over the device's windows; equal-transcript rate and token error against
    PyTorch on the same windows, and WER against the references (also PyTorch on whole utterances). `decode` turns
    unit ids into text (pieces into words; phones into space-separated phones, so "WER" is then a phone error)."""
    import jiwer

    from asr.runtime.interpreter import TFLiteModel

    blank = units - 1
    runs = {
        "torch": torch_window_model(model),
        "tflite_float32": TFLiteModel(float_path),
        "ai_edge_litert_int8": TFLiteModel(int8_path),
        "tflite_micro_int8": micro_window_model(int8_path, arena),
    }
    ids: dict[str, list[list[int]]] = {name: [] for name in runs}
    ids["torch_whole_utterance"] = []
    float_diff = 0.0
    for audio, _ in tqdm(utterances, desc="transcript parity", unit="utt", leave=False):
        reference = None
        for name, run in runs.items():
            lp = stream_log_probs(run, audio, spec, plan, units)
            if name == "torch":
                reference = lp
            elif name == "tflite_float32":
                float_diff = max(float_diff, float(np.abs(lp - reference).max()))
            ids[name].append(greedy(lp, blank))
        with torch.no_grad():
            whole = model(torch.from_numpy(log_mel(audio, spec))[None])[0].numpy()
        ids["torch_whole_utterance"].append(greedy(whole, blank))
    refs = [text.lower() for _, text in utterances]
    texts = {name: [decode(s).lower() for s in seqs] for name, seqs in ids.items()}
    result: dict = {"utterances": len(utterances), "float32_max_abs_log_prob_diff": float(f"{float_diff:.3g}")}
    for name in ("tflite_float32", "ai_edge_litert_int8", "tflite_micro_int8"):
        result[f"{name}_equal_transcripts_vs_torch"] = round(
            float(np.mean([a == b for a, b in zip(ids[name], ids["torch"], strict=True)])), 4
        )
        result[f"{name}_token_error_vs_torch"] = round(_token_error(ids["torch"], ids[name]), 4)
    result["wer"] = {name: round(float(jiwer.wer(refs, [h or "-" for h in hyps])), 4) for name, hyps in texts.items()}
    result["samples"] = [
        {"ref": r, "torch": t, "int8_micro": m}
        for r, t, m in list(zip(refs, texts["torch"], texts["tflite_micro_int8"], strict=True))[:5]
    ]
    if float_diff > FLOAT_LOG_PROB_ATOL:
        from asr.export.parity import ParityError

        raise ParityError(
            f"{float_path}: float32 log-probabilities differ from PyTorch by {float_diff:.3g} "
            f"(tolerance {FLOAT_LOG_PROB_ATOL}): the conversion changed the model"
        )
    return result


def _token_error(refs: list[list[int]], hyps: list[list[int]]) -> float:
    """Edit distance between token sequences over the reference tokens (the token error rate)."""
    errors = total = 0
    for r, h in zip(refs, hyps, strict=True):
        row = list(range(len(h) + 1))
        for i, a in enumerate(r, 1):
            prev, row[0] = row[0], i
            for j, b in enumerate(h, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (a != b))
        errors, total = errors + row[-1], total + len(r)
    return errors / max(total, 1)


def tokenizer_units(tokenizer_path: Path | None, checkpoint: Path) -> tuple[Pieces, Path]:
    """The tokenizer's pieces and scores (read with sentencepiece, here on the PC)."""
    if tokenizer_path is None or not Path(tokenizer_path).is_file():
        raise InputError(
            f"{checkpoint}: the CTC model's tokenizer ({tokenizer_path or 'tokenizer.model'}) is not beside the "
            "checkpoint; a CTC export must carry it (copy the run's tokenizer.model next to the checkpoint)"
        )
    from asr.text import Tokenizer

    sp = Tokenizer(tokenizer_path)._sp
    n = sp.GetPieceSize()
    return Pieces([sp.IdToPiece(i) for i in range(n)], [float(sp.GetScore(i)) for i in range(n)]), Path(tokenizer_path)


def export_ctc_checkpoint(
    checkpoint: Path,
    out_dir: Path,
    *,
    calibration: int | None = None,
    data_root: Path | None = None,
    window_s: float = DEFAULT_WINDOW_SECONDS,
    overlap_s: float = DEFAULT_OVERLAP_SECONDS,
    parity_utterances: int | None = None,
) -> dict:
    """Export a CTC checkpoint through the loop route; returns the manifest (see the module docstring)."""
    from asr.data.librispeech import LibriSpeech
    from asr.model.checkpoint import load_checkpoint
    from asr.model.report import parameter_report

    checkpoint = Path(checkpoint)
    loaded = load_checkpoint(checkpoint)
    model = loaded.model.eval()
    phones = loaded.config.data.units == "phones"
    if phones:
        unit_names, units_from = list(PHONES), "asr.text.PHONES"
        tokenizer = PhoneTokenizer()
        decode, reference = tokenizer.decode, tokenizer.reference
        spell = spell_phones
    else:
        pieces, tokenizer_path = tokenizer_units(loaded.tokenizer, checkpoint)
        unit_names, units_from = pieces.pieces, f"its tokenizer {tokenizer_path}"
        decode, reference = pieces.decode, str
        spell = partial(spell_pieces, pieces)
    config, plan = window_plan(loaded.config, window_s, overlap_s)
    try:
        check_exportable(model, config)
    except LoopExportError as e:
        raise LoopExportError(f"{checkpoint}: {e}; CTC models export through the loop route only") from None
    if model.classifier.out_features != len(unit_names) + 1:
        raise InputError(
            f"{checkpoint}: the model has {model.classifier.out_features} outputs but {units_from} has "
            f"{len(unit_names)} units (+ blank)"
        )
    spec = config.features
    pad = silence_feature(spec)
    root = Path(data_root or config.data.root)
    train_set = LibriSpeech(root, config.data.train_split)
    test_set = LibriSpeech(root, config.data.test_split)
    count = calibration if calibration is not None else config.export.calibration_samples
    if count <= 0:
        raise InputError(f"--calibration {count}: the calibration set would be empty")
    rng = np.random.default_rng(0)
    calib = []
    for i in rng.permutation(len(train_set)):
        calib.extend(utterance_windows(log_mel(train_set[int(i)][0], spec), plan, pad))
        if len(calib) >= count:
            break
    calib_x = np.stack(calib[:count]).astype(np.float32)
    n_parity = parity_utterances if parity_utterances is not None else config.export.parity_samples
    chosen = np.sort(rng.permutation(len(test_set))[:n_parity])
    utterances = [(test_set[int(i)][0], reference(test_set[int(i)][1])) for i in chosen]
    report = parameter_report(model)
    started = time.perf_counter()
    shape = (1, plan.window_frames, spec.n_mels)
    with staging(out_dir) as stage, tempfile.TemporaryDirectory(prefix="asr-export-") as work:
        made = convert_loop(model, config, shape, calib_x, stage, Path(work))
        float_info, int8_info = flatbuffer.inspect_tflite(made.float_path), flatbuffer.inspect_tflite(made.int8_path)
        weights = check_weights(float_info, int8_info, int(report["unique_parameters"]))
        micro.check_supported(int8_info, None)
        measured = micro.measure_arena(made.int8_path)
        margin = config.export.arena_margin
        arena = int(math.ceil(measured * (1 + margin) / micro.ARENA_ALIGN) * micro.ARENA_ALIGN)
        parity = transcript_parity(
            model, decode, len(unit_names) + 1, utterances, spec, plan, made.float_path, made.int8_path, measured
        )
        files = [made.float_path, made.int8_path]
        ctc = CTCUnits(
            units="phones" if phones else "sentencepiece",
            blank=len(unit_names),
            window_frames=plan.window_frames,
            hop_frames=plan.hop_frames,
            time_strides=plan.time_strides,
            encoder_frames_per_window=encoder_frames(plan.window_frames, plan.time_strides),
            **(
                {"phones": unit_names, "phone_source": PHONE_SOURCE}
                if phones
                else {"pieces": pieces.pieces, "piece_scores": pieces.scores}
            ),
        )
        io = _io(made.int8_path)
        report = {
            "route": "loop",
            "route_details": made.details,
            **model_report(config, report, weights, files, (float_info, int8_info), (measured, margin)),
            "parity": {"transcripts": parity},
            "conversion_seconds": round(made.seconds, 2),
            "calibration_windows": len(calib_x),
            "source": {"checkpoint": str(checkpoint), "config": config.name, "data": str(root)},
            "versions": tool_versions(),
            "export_seconds": round(time.perf_counter() - started, 2),
        }
        report["words"] = write_word_files(stage, train_set.transcripts(), grammar_words(), spell)
        manifest = _manifest(unit_names, spec, made, io, arena, ctc, report)
        manifest.write(stage)
    return manifest


def grammar_words() -> set[str]:
    """Every word a request of the default recipe's grammar says: `asr transcribe --grammar` needs them spelled."""
    from asr.data.recipe import DATA_DIR

    return {w for r in requests(load_grammar(DATA_DIR / "grammar.toml")) for w in r.text.split()}


def spell_phones(words: list[str]) -> dict[str, list[str]]:
    return {w: [PHONES[i] for i in ids] for w, ids in phonemes(words).items()}


def spell_pieces(pieces: Pieces, words: list[str]) -> dict[str, list[str]]:
    out = {}
    for word in words:
        with contextlib.suppress(CTCError):  # a word its pieces cannot spell stays out of the lexicon
            out[word] = [pieces.pieces[i] for i in pieces.encode_word(word)]
    return out


def _manifest(units: list[str], spec, made, io: dict, arena: int, ctc: CTCUnits, report: dict) -> Manifest:
    models = {"int8": made.int8_path.name, "float32": made.float_path.name}
    labels = [*units, "<blank>"]
    return Manifest(
        labels, spec, models, io["input"], io["output"], arena, output_kind="log_probs", ctc=ctc, report=report
    )


def summary(manifest: Manifest, out_dir: Path) -> str:
    """What people want after a CTC export: sizes, arena, transcript parity, WER."""
    r = manifest.report
    p, files, w = r["parity"]["transcripts"], r["files"], r.get("words")
    wer = ", ".join(f"{k} {v:.1%}" for k, v in p["wer"].items())
    rate = "PER" if manifest.ctc.units == "phones" else "WER"
    return "\n".join(
        [
            f"wrote {out_dir} (loop route, CTC over {len(manifest.ctc.symbols)} {manifest.ctc.units} units, "
            f"{manifest.features.clip_seconds:g} s windows every {manifest.ctc.hop_frames} frames): "
            + ", ".join(f"{name} {size:,} B" for name, size in files.items()),
            f"unique parameters {r['unique_parameters']:,} (computed {r['effective_parameters']:,});"
            f" int8 constants {r['weights']['int8_constant_bytes']:,} B; TFLite Micro arena "
            f"{manifest.arena_bytes:,} B (measured {r['arena_measured_bytes']:,} B)",
            f"greedy transcripts on {p['utterances']} test utterances equal to PyTorch's: int8 TFLite Micro "
            f"{p['tflite_micro_int8_equal_transcripts_vs_torch']:.1%} (token error "
            f"{p['tflite_micro_int8_token_error_vs_torch']:.1%}), int8 ai-edge-litert "
            f"{p['ai_edge_litert_int8_equal_transcripts_vs_torch']:.1%}, float32 "
            f"{p['tflite_float32_equal_transcripts_vs_torch']:.1%}",
            f"{rate}: {wer}",
        ]
        + (
            [
                f"words: {w['lexicon_words']:,} in {LEXICON_FILE}, a {w['lm_order']}-gram of {w['lm_sentences']:,} "
                f"training transcripts in {LM_FILE} (`asr transcribe` writes words with them)"
            ]
            if w
            else []
        )
    )


def phone_model(loaded, checkpoint: Path) -> torch.nn.Module:
    """The keyword model's encoder with its training-only phone head (train.spell_ctc, ctc_units = "phones") as a
    CTC model over espeak-ng phones (blank last): what wake words defined by text are spotted with."""
    from asr.model.conformer import CTCConformer

    kws, config = loaded.model, loaded.config
    if getattr(kws, "speller", None) is None or config.train.ctc_units != "phones":
        raise InputError(
            f"{checkpoint}: no phone head to export (it needs train.spell_ctc > 0 with train.ctc_units = 'phones')"
        )
    ctc = CTCConformer(config.model, config.features.n_mels, kws.speller.out_features)
    state = {k: v for k, v in kws.state_dict().items() if not k.startswith(("classifier.", "speller."))}
    state |= {f"classifier.{k}": v for k, v in kws.speller.state_dict().items()}
    ctc.load_state_dict(state)
    return ctc.eval()


def export_phone_checkpoint(
    checkpoint: Path,
    out_dir: Path,
    *,
    calibration: int | None = None,
    data_root: Path | None = None,
    window_s: float | None = None,
    overlap_s: float = 0.5,
    parity_utterances: int | None = None,
) -> dict:
    """Export a keyword checkpoint's phone head as a CTC model (`asr export --phones`), the manifest carrying the
    phone set; parity on greedy phone strings of the commands corpus's test words against espeak-ng's."""
    from asr.data.speech_commands import SpeechCommands
    from asr.export.windows import corpus_windows
    from asr.model.checkpoint import load_checkpoint
    from asr.model.report import parameter_report

    checkpoint = Path(checkpoint)
    loaded = load_checkpoint(checkpoint)
    model = phone_model(loaded, checkpoint)
    config, plan = window_plan(loaded.config, window_s or loaded.config.features.clip_seconds, overlap_s)
    check_exportable(model, config)
    spec, root = config.features, Path(data_root or loaded.config.data.root)
    count = calibration if calibration is not None else config.export.calibration_samples
    calib_x = corpus_windows(config, root, "train", count)[0]
    if len(calib_x) == 0:
        raise InputError(f"{root}: the training split has no clips to calibrate with")
    test = SpeechCommands(root, "testing", config.data.keywords, silence_fraction=0.0)
    rng = np.random.default_rng(0)
    n = parity_utterances if parity_utterances is not None else config.export.parity_samples
    paths = [test.items[int(i)][0] for i in np.sort(rng.permutation(len(test.items))[:n])]
    said = phonemes([p.parent.name for p in paths])
    from asr.audio import read_audio

    utterances = [(read_audio(p, spec.sample_rate), " ".join(PHONES[i] for i in said[p.parent.name])) for p in paths]
    report = parameter_report(model)
    started = time.perf_counter()
    with staging(out_dir) as stage, tempfile.TemporaryDirectory(prefix="asr-export-") as work:
        made = convert_loop(model, config, (1, plan.window_frames, spec.n_mels), calib_x, stage, Path(work))
        float_info, int8_info = flatbuffer.inspect_tflite(made.float_path), flatbuffer.inspect_tflite(made.int8_path)
        weights = check_weights(float_info, int8_info, int(report["unique_parameters"]))
        micro.check_supported(int8_info, None)
        measured = micro.measure_arena(made.int8_path)
        arena = int(math.ceil(measured * (1 + config.export.arena_margin) / micro.ARENA_ALIGN) * micro.ARENA_ALIGN)
        decode = lambda ids: " ".join(PHONES[i] for i in ids)  # noqa: E731
        parity = transcript_parity(
            model, decode, len(PHONES) + 1, utterances, spec, plan, made.float_path, made.int8_path, measured
        )
        ctc = CTCUnits(
            units="phones",
            blank=len(PHONES),
            window_frames=plan.window_frames,
            hop_frames=plan.hop_frames,
            time_strides=plan.time_strides,
            encoder_frames_per_window=encoder_frames(plan.window_frames, plan.time_strides),
            phones=list(PHONES),
            phone_source=PHONE_SOURCE,
        )
        io = _io(made.int8_path)
        report = {
            "route": "loop",
            "route_details": made.details,
            "unique_parameters": int(report["unique_parameters"]),
            "effective_parameters": report.get("effective_parameters"),
            "weights": weights,
            "files": {p.name: p.stat().st_size for p in (made.float_path, made.int8_path)},
            "tflite": {"float32": float_info.summary(), "int8": int8_info.summary()},
            "arena_measured_bytes": measured,
            "parity": {"transcripts": parity},
            "source": {"checkpoint": str(checkpoint), "config": config.name, "data": str(root), "head": "phones"},
            "versions": tool_versions(),
            "export_seconds": round(time.perf_counter() - started, 2),
        }
        manifest = _manifest(list(PHONES), spec, made, io, arena, ctc, report)
        manifest.write(stage)
    return manifest
