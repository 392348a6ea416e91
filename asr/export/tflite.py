"""ONNX -> TFLite float32 and full-integer int8 with onnx2tf, run in a child process.

Why a child process: onnx2tf imports TensorFlow, and tflite-runtime fails (`vector::reserve`) in a process
that has imported TensorFlow; onnx2tf also calls sys.exit on errors and prints a lot. Its log is kept next
to the outputs and its tail is quoted when conversion fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.export.onnx import INPUT_NAME


class ConversionError(InputError):
    """onnx2tf could not convert the model; the message quotes its log (a ValueError: the CLI prints it)."""


def convert(onnx_path: Path, calibration: np.ndarray, workdir: Path) -> tuple[Path, Path, float]:
    """(float32 .tflite, int8 .tflite, seconds) converted from `onnx_path` via onnx2tf in `workdir`.

    `calibration` holds normalised feature windows [N, frames, n_mels] (PyTorch layout, kept by `-kat`).
    The input .onnx is copied first: onnx2tf simplifies its input file in place.
    """
    if len(calibration) == 0:
        raise InputError(f"{onnx_path}: the calibration set is empty; int8 conversion needs real feature windows")
    workdir.mkdir(parents=True, exist_ok=True)
    work_onnx = workdir / "model.onnx"
    shutil.copyfile(onnx_path, work_onnx)
    calib_path = workdir / "calibration.npy"
    np.save(calib_path, calibration.astype(np.float32))
    out_dir = workdir / "onnx2tf"
    log_path = workdir / "onnx2tf.log"
    env = dict(os.environ)
    # onnx2tf shells out to the `onnxsim` executable, installed next to this interpreter.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "asr.export.tflite", str(work_onnx), str(calib_path), str(out_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    seconds = time.perf_counter() - start
    float_path, int8_path = out_dir / "model_float32.tflite", out_dir / "model_full_integer_quant.tflite"
    if proc.returncode != 0 or not float_path.is_file() or not int8_path.is_file():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise ConversionError(f"{onnx_path}: onnx2tf failed (exit {proc.returncode}); log {log_path}:\n{tail}")
    return float_path, int8_path, seconds


def _onnx2tf_main(onnx_path: str, calib_path: str, out_dir: str) -> None:
    import onnx2tf

    zero, one = np.zeros(1, np.float32), np.ones(1, np.float32)  # features are normalised already
    onnx2tf.convert(
        input_onnx_file_path=onnx_path,
        output_folder_path=out_dir,
        keep_shape_absolutely_input_names=[INPUT_NAME],  # -kat: keep [1, frames, n_mels]
        output_integer_quantized_tflite=True,  # -oiqt
        custom_input_op_name_np_data_path=[[INPUT_NAME, calib_path, zero, one]],
        input_quant_dtype="int8",  # -iqd int8
        output_quant_dtype="int8",  # -oqd int8
        non_verbose=True,
    )


if __name__ == "__main__":
    _onnx2tf_main(*sys.argv[1:4])
