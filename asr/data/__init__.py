"""Corpora: offline synthesis (synth), loaders for the Speech Commands and LibriSpeech layouts, summaries."""
