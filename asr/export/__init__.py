"""PyTorch keyword model -> TFLite float32 and int8, parity checks, TFLite Micro bundle.

`asr export CHECKPOINT OUTDIR [--route loop|unrolled]` runs `asr.export.pipeline.export_checkpoint`. Two routes make
the .tflite files (asr.export.routes): `loop` (tied blocks as TFLite WHILE loops, asr.export.loop; the default) and
`unrolled` (ONNX -> onnx2tf). TensorFlow is only ever imported in a child process (`asr.export.tflite`,
`asr.export.loop_graph`), so the calling process can still load tflite-runtime.
"""
