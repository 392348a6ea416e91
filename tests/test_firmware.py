"""The MCU bundle compiled with TensorFlow Lite Micro (`asr firmware`, host target) agrees with the Python
TFLite Micro interpreter, and a corrupt or mismatched model stops at start-up with a message.

Needs the offline TFLM kit ($TFLM_KIT or ../shared/third_party/tflm) and g++; the first run compiles the ~70
TFLM sources the model needs (a few minutes on 2 cores), later runs reuse ~/.cache/tied-asr/tflm/.
The Cortex-M images and their QEMU runs are a benchmark: bench/firmware.py.
"""

import shutil
import subprocess

import numpy as np
import pytest
from fixtures_export import kit_or_skip

from asr.export import firmware
from asr.export.firmware_check import agreement, run_firmware, split_clips
from asr.runtime.bundle import Manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def host_firmware(request, tmp_path_factory):
    kit_or_skip()  # before the export fixture: no training when the kit or compiler is absent
    export = request.getfixturevalue("kws_export_loop")
    return firmware.build(export, "host", tmp_path_factory.mktemp("fw") / "host")


def test_host_firmware_matches_python_micro(host_firmware, kws_export_loop, commands_corpus):
    """Raw PCM in; the C front end and the compiled interpreter give Python TFLite Micro's outputs."""
    manifest = Manifest.read(kws_export_loop)
    pcm, _ = split_clips(commands_corpus, manifest.labels, 12)
    frames, mels = manifest.features.window_frames, manifest.features.n_mels
    run = run_firmware("host", host_firmware, pcm, frames, mels)
    result = agreement(kws_export_loop, run, pcm)
    assert result["clips"] == len(pcm) >= 10
    # Same input, same reference kernels: the same int8 outputs.
    assert result["labels_same_input"] == 1.0 and result["max_lsb_same_input"] == 0
    # From the audio: the C front end may round a feature across a quantization step, no more.
    assert result["frontend_max_lsb"] <= 1
    assert result["labels_end_to_end"] == 1.0
    assert "arena used: " in run.log


def _model_offsets(model: bytes) -> int:
    """Byte offset of the root table's `version` field (field 0) in a TFLite flatbuffer."""
    table = int.from_bytes(model[0:4], "little")
    vtable = table - int.from_bytes(model[table : table + 4], "little", signed=True)
    return table + int.from_bytes(model[vtable + 4 : vtable + 6], "little")


def _build_variant(export_dir, tmp_path, name, edit):
    variant = tmp_path / name
    shutil.copytree(export_dir / "mcu", variant / "mcu")
    edit(variant / "mcu")
    exe = firmware.build(variant, "host", variant / "build")
    proc = subprocess.run([str(exe)], input=np.zeros(16000, np.int16).tobytes(), capture_output=True, timeout=60)
    return proc.returncode, (proc.stdout + proc.stderr).decode()


def test_missing_op_and_wrong_schema_are_reported(host_firmware, kws_export_loop, tmp_path):
    def drop_op(mcu):
        text = (mcu / "op_resolver.h").read_text()
        assert "  TF_LITE_ENSURE_STATUS(resolver.AddWhile());\n" in text
        (mcu / "op_resolver.h").write_text(text.replace("  TF_LITE_ENSURE_STATUS(resolver.AddWhile());\n", ""))

    rc, log = _build_variant(kws_export_loop, tmp_path, "no_while", drop_op)
    assert rc == 1
    assert "the model uses op WHILE, which op_resolver.h does not register" in log

    def bump_schema(mcu):
        model = bytearray((kws_export_loop / "model_int8.tflite").read_bytes())
        at = _model_offsets(bytes(model))
        assert int.from_bytes(model[at : at + 4], "little") == 3
        model[at : at + 4] = (4).to_bytes(4, "little")
        data = ",\n".join(f"0x{b:02x}" for b in model)
        text = (mcu / "model_data.cc").read_text()
        head = text[: text.index("{") + 1]
        tail = f"\n}};\nconst unsigned int g_model_data_len = {len(model)};\n"
        (mcu / "model_data.cc").write_text(f"{head}\n{data}{tail}")

    rc, log = _build_variant(kws_export_loop, tmp_path, "schema4", bump_schema)
    assert rc == 1 and "schema version 4; this TFLite Micro supports version 3" in log

    def truncate(mcu):
        text = (mcu / "model_data.cc").read_text()
        (mcu / "model_data.cc").write_text(text.replace("g_model_data_len = ", "g_model_data_len = 64 + 0 * "))

    rc, log = _build_variant(kws_export_loop, tmp_path, "truncated", truncate)
    assert rc == 1 and "not a valid TFLite model flatbuffer" in log


def test_host_firmware_streams_like_the_pi_detector(host_firmware, kws_export_loop, commands_corpus, tmp_path):
    """--stream: frame-by-frame features, a window every hop, the C decision step: the Pi detector's detections."""
    from tflite_micro import runtime

    from asr.runtime.bundle import Thresholds, save_thresholds
    from asr.runtime.detector import Detector
    from asr.runtime.interpreter import dequantize, quantize

    manifest = Manifest.read(kws_export_loop)
    saved = Thresholds(0.5)  # low enough that the tiny model fires on the test clips

    variant = tmp_path / "stream"
    shutil.copytree(kws_export_loop, variant)
    save_thresholds(variant, saved)  # rewrites the bundle's detector_config.h
    exe = firmware.build(variant, "host", variant / "build")
    pcm, _ = split_clips(commands_corpus, manifest.labels, 40)
    stream = pcm.reshape(-1)
    out = subprocess.run([str(exe), "--stream"], input=stream.tobytes(), capture_output=True, timeout=300, check=True)
    fired = [tuple(line.split()[1:]) for line in out.stdout.decode().splitlines() if line.startswith("detection ")]

    interpreter = runtime.Interpreter.from_file(
        str(kws_export_loop / manifest.models["int8"]), arena_size=manifest.arena_bytes
    )
    inp, outp = manifest.input, manifest.output

    def model(features):
        interpreter.set_input(quantize(features[None], inp.scale, inp.zero_point), 0)
        interpreter.invoke()
        return dequantize(interpreter.get_output(0)[0], outp.scale, outp.zero_point)

    detector = Detector(
        model, manifest.labels, manifest.features, output_kind=manifest.output_kind, threshold=saved.threshold
    )
    python = [(f"{d.time_s:.3f}", d.label, f"{d.score:.4f}") for d in detector.push(stream.astype(np.float32) / 32768)]
    assert python, "the tiny model should fire at threshold 0.5 on the test clips"
    assert fired == python
