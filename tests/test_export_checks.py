"""The export's guards: duplicated weights, ops TFLite Micro lacks, bad input, no half-written OUTDIR."""

import subprocess
import sys

import flatbuffers
import numpy as np
import pytest
import torch
from ai_edge_litert import schema_py_generated as schema

from asr.config import Config
from asr.export import flatbuffer
from asr.export.micro import UnsupportedOpError, check_supported, resolver_method
from asr.export.pipeline import export_model, staging


def _write(model: schema.ModelT, path):
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())
    return path


@pytest.mark.slow
def test_duplicated_weight_is_an_error(kws_export, tmp_path):
    """Give one weight tensor its own copy of the same bytes: the check must name it."""
    model = flatbuffer.load_model(kws_export / "model_int8.tflite")
    tensors = model.subgraphs[0].tensors
    big = max(
        (t for t in tensors if model.buffers[t.buffer].data is not None),
        key=lambda t: len(model.buffers[t.buffer].data),
    )
    copy = schema.BufferT()
    copy.data = np.array(model.buffers[big.buffer].data, dtype=np.uint8)
    model.buffers.append(copy)
    twin = schema.TensorT()  # a second constant tensor holding the same bytes in its own buffer
    twin.shape, twin.type, twin.name = big.shape, big.type, b"duplicated_weight"
    twin.buffer = len(model.buffers) - 1
    tensors.append(twin)
    info = flatbuffer.inspect_tflite(_write(model, tmp_path / "dup.tflite"))
    with pytest.raises(flatbuffer.DuplicateWeightsError, match="stored more than once") as error:
        flatbuffer.check_stored_once(info)
    assert "duplicated_weight" in str(error.value)
    flatbuffer.check_stored_once(flatbuffer.inspect_tflite(kws_export / "model_int8.tflite"))


@pytest.mark.slow
def test_unsupported_op_is_named(kws_export, tmp_path):
    """An op TFLite Micro has no kernel for (GELU) is reported with the layer that produced it."""
    model = flatbuffer.load_model(kws_export / "model_int8.tflite")
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = schema.BuiltinOperator.GELU, 127, 1
    model.operatorCodes.append(code)
    op = next(o for o in model.subgraphs[0].operators if flatbuffer.op_name(model, o.opcodeIndex) == "LOGISTIC")
    op.opcodeIndex = len(model.operatorCodes) - 1
    layer = model.subgraphs[0].tensors[op.outputs[0]].name.decode()
    info = flatbuffer.inspect_tflite(_write(model, tmp_path / "gelu.tflite"))
    with pytest.raises(UnsupportedOpError, match="GELU") as error:
        check_supported(info, kws_export / "model.onnx")
    assert layer in str(error.value)


def test_resolver_method_names():
    assert resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert resolver_method("CONV_2D") == "AddConv2D"
    assert resolver_method("BATCH_MATMUL") == "AddBatchMatMul"
    assert resolver_method("SQUARED_DIFFERENCE") == "AddSquaredDifference"


def _asr_export(*args):
    return subprocess.run([sys.executable, "-m", "asr.cli", "export", *map(str, args)], capture_output=True, text=True)


def test_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"not a checkpoint")
    proc = _asr_export(bogus, tmp_path / "out")
    assert proc.returncode == 2
    assert str(bogus) in proc.stderr and "not a checkpoint" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint(tmp_path):
    proc = _asr_export(tmp_path / "nope.pt", tmp_path / "out")
    assert proc.returncode == 2 and "nope.pt" in proc.stderr


@pytest.mark.slow
def test_empty_calibration_set(kws_checkpoint, commands_corpus, tmp_path):
    proc = _asr_export(kws_checkpoint, tmp_path / "out", "--calibration", "0", "--data", commands_corpus)
    assert proc.returncode == 2 and "calibration" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_label_count_mismatch(tmp_path):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(97 * 40, 5))
    windows = np.zeros((4, 97, 40), np.float32)
    with pytest.raises(ValueError, match="5 labels|outputs"):
        export_model(model, Config(), ["a", "b", "c"], tmp_path / "out", windows, (windows, np.zeros(4)))
    assert not (tmp_path / "out").exists()


def test_failed_export_leaves_no_outdir(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staging(out) as stage:
        (stage / "manifest.json").write_text("{}")
        raise RuntimeError("conversion died")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an export directory"), staging(tmp_path):
        pass
    assert (tmp_path / "notes.txt").read_text() == "mine"
