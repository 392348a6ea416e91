"""The microcontroller bundle: generated C sources agree with the model, and the C front end with numpy."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from asr.audio import read_audio
from asr.export import flatbuffer
from asr.export.mcu import INT8_KERNELS, micro_model, registration
from asr.export.micro import MicroError, resolver_method
from asr.features import log_mel
from asr.runtime.bundle import Manifest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("export", ["kws_export", "kws_export_loop"])
def test_bundle_matches_the_model(export, request):
    """Settings and the op resolver come from the model: for the loop route, ops of every subgraph (WHILE, LESS...)."""
    kws_export = request.getfixturevalue(export)
    mcu, manifest = kws_export / "mcu", Manifest.read(kws_export)
    settings = (mcu / "model_settings.h").read_text()
    assert f"kTensorArenaSize = {manifest.arena_bytes};" in settings
    assert f"kInputZeroPoint = {manifest.input.zero_point};" in settings
    assert all(f'"{label}"' in settings for label in manifest.labels)
    info = flatbuffer.inspect_tflite(kws_export / "model_int8.tflite")
    ops = info.op_counts
    resolver = (mcu / "op_resolver.h").read_text()
    assert f"MicroMutableOpResolver<{len(ops)}>" in resolver
    assert re.findall(r"resolver\.(Add\w+)\(", resolver) == [resolver_method(op) for op in ops]
    # int8 kernels (smaller with CMSIS-NN) exactly where every use of the op is int8, or int8 and the loop counter
    kinds = info.use_kinds
    int8_only = {op for op, k in kinds.items() if k == {"int8"}}
    assert {"FULLY_CONNECTED", "SOFTMAX"} <= int8_only
    counter = {"ADD"} if manifest.report["route"] == "loop" else set()
    assert set(re.findall(r"Register_(\w+)_INT8\b", resolver)) == (int8_only | counter) & set(INT8_KERNELS)
    # the row-wise ops run row_kernels.h (checked bit-exact by the host firmware test)
    assert "AddMean(kws::RegisterMeanLastAxis())" in resolver and "kws::RegisterRowBroadcast<" in resolver
    assert "AddSoftmax(kws::RegisterSoftmaxTable<tflite::Register_SOFTMAX_INT8>())" in resolver
    assert f"AddSub({registration('SUB', kinds['SUB'])[0]})" in resolver
    assert "AddFullyConnected(kws::RegisterFullyConnectedRows<tflite::Register_FULLY_CONNECTED_INT8>())" in resolver
    if manifest.report["route"] == "loop":  # LESS only in the condition subgraph, the convolution only in the body
        assert {"AddWhile", "AddLess", "AddQuantize", "AddDepthwiseConv2D"} <= set(re.findall(r"Add\w+", resolver))
        # the loop counter (int32 i + 1, i < depth) runs loop_kernels.h: ADD's int8 kernel does the rest, no LESS kernel
        assert kinds["ADD"] == {"int8", "int32"} and kinds["LESS"] == {"int32"}
        assert "AddAdd(kws::RegisterRowBroadcast<kws::RegisterAddInt32Or<tflite::Register_ADD_INT8>>())" in resolver
        assert "AddLess(kws::RegisterLessInt32())" in resolver
        # every SUB is the LayerNorm's x - mean: TFLite Micro's SUB kernel is left out
        assert kinds["SUB"] == {"int8 row scalar"} and "kws::RegisterSubRows<kws::SubPrepareOnly>()" in resolver
    data = (mcu / "model_data.cc").read_text()
    compact, _ = flatbuffer.compact_for_micro((kws_export / "model_int8.tflite").read_bytes())
    assert f"g_model_data_len = {len(compact)};" in data
    array = data[data.index("{") : data.index("};")]
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", array)) == compact


def test_counter_kernels_only_where_they_compute_every_use():
    """loop_kernels.h computes int32 ADD and LESS; an op with any other use keeps a kernel that computes it."""
    assert registration("LESS", {"int32"}) == ("kws::RegisterLessInt32()", None)
    assert registration("LESS", {"int32", "int8"}) == ("", None)  # TFLM's LESS
    row = "kws::RegisterRowBroadcast<{}>()"
    counter = row.format("kws::RegisterAddInt32Or<tflite::Register_ADD_INT8>")
    assert registration("ADD", {"int8", "int32"}) == (counter, "add.h")  # the header of the int8 kernel it wraps
    assert registration("ADD", {"int8"}) == (row.format("tflite::Register_ADD_INT8"), "add.h")
    assert registration("ADD", {"int32", "other"}) == (row.format("tflite::Register_ADD"), None)
    assert registration("RESHAPE", {"int8"}) == ("", None)


def test_sub_leaves_out_tflite_micros_kernel_only_where_every_use_is_x_minus_a_row_scalar():
    assert registration("SUB", {"int8 row scalar"}) == ("kws::RegisterSubRows<kws::SubPrepareOnly>()", None)
    assert registration("SUB", {"int8 row scalar", "int8"}) == ("kws::RegisterSubRows<tflite::Register_SUB>()", None)


def test_bundle_stores_one_zero_point_per_weight(kws_export_loop):
    """Per-channel weights keep their scales but one zero point each: fewer bytes, the same outputs in TFLite Micro
    (the export checks that on its parity windows and records what it saved)."""
    tflite = (kws_export_loop / "model_int8.tflite").read_bytes()
    compact, dropped = flatbuffer.compact_for_micro(tflite)
    saved = Manifest.read(kws_export_loop).report["mcu_model"]
    assert saved == {"bytes": len(compact), "saved_bytes": len(tflite) - len(compact), "zero_points_dropped": dropped}
    assert dropped > 0 and saved["saved_bytes"] >= 7 * dropped  # int64 each, less the vectors' padding
    before, after = (
        flatbuffer.load_model(kws_export_loop / "model_int8.tflite"),
        schema.ModelT.InitFromPackedBuf(bytearray(compact), 0),
    )
    pairs = [
        pair
        for g, h in zip(before.subgraphs, after.subgraphs, strict=True)
        for pair in zip(g.tensors, h.tensors, strict=True)
    ]
    for old, new in pairs:
        if old.quantization is not None and old.quantization.scale is not None:
            np.testing.assert_array_equal(old.quantization.scale, new.quantization.scale)
            assert len(new.quantization.zeroPoint) == 1 or len(set(old.quantization.zeroPoint)) > 1


def test_a_compaction_that_changes_outputs_is_refused(kws_export_loop, monkeypatch):
    """micro_model runs both models in TFLite Micro: a compaction that altered a weight's scale stops the export."""

    def wrong(tflite: bytes):
        model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
        tensors = [t for graph in model.subgraphs for t in graph.tensors if t.quantization is not None]
        scaled = [t for t in tensors if t.quantization.scale is not None and len(t.quantization.scale) > 1]
        weight = next(t for t in scaled if t.type == schema.TensorType.INT8)  # a bias's scale is not read
        weight.quantization.scale = weight.quantization.scale * 2
        return flatbuffer.pack(model), 0

    monkeypatch.setattr("asr.export.mcu.compact_for_micro", wrong)
    manifest = Manifest.read(kws_export_loop)
    inputs = np.random.default_rng(0).integers(-128, 128, (4, *manifest.input.shape[1:])).astype(np.int8)
    with pytest.raises(MicroError, match="computes other outputs"):
        micro_model(kws_export_loop / "model_int8.tflite", inputs, manifest.arena_bytes)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_c_frontend_matches_numpy(kws_export, commands_corpus, tmp_path):
    """Compile the bundle's C front end on the host and compare its features on generated speech."""
    mcu = kws_export / "mcu"
    exe = tmp_path / "host_features"
    sources = [mcu / "frontend.c", mcu / "frontend_tables.c", mcu / "host_features.c"]
    cmd = ["gcc", "-O2", "-std=c99", "-Wall", "-Werror", f"-I{mcu}", *map(str, sources), "-lm", "-o", str(exe)]
    subprocess.run(cmd, check=True)
    spec = Manifest.read(kws_export).features
    clips = sorted(p for p in commands_corpus.glob("*/*.wav") if not p.parent.name.startswith("_"))[:5]
    assert clips
    for clip in clips:
        audio = read_audio(clip)
        c = np.frombuffer(subprocess.run([str(exe)], input=audio.tobytes(), capture_output=True).stdout, np.float32)
        reference = log_mel(audio, spec)
        assert c.size == reference.size
        np.testing.assert_allclose(c.reshape(reference.shape), reference, atol=1e-3)
