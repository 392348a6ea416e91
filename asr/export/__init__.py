"""PyTorch keyword model -> ONNX -> TFLite float32 and int8 (onnx2tf), parity checks, TFLite Micro bundle.

`asr export CHECKPOINT OUTDIR` runs `asr.export.pipeline.export_checkpoint`. TensorFlow is only ever imported
in a child process (`asr.export.tflite`), so the calling process can still load tflite-runtime.
"""
