"""What runs on a device: numpy front end, TFLite interpreter wrapper, streaming detector.

Nothing under this package imports torch or tensorflow, so a Raspberry Pi needs only numpy and an
interpreter (ai-edge-litert or tflite-runtime).
"""
