"""Side-by-side comparison of the tied model with its peers: pocketsphinx, the untied Conformer, DS-CNN and a relaxed
plan, on the same held-out voices, noise and stream (`bench/compare.py`); and the sentence recognizers Whisper and
pocketsphinx beside the CTC model (`bench/asr_peers.py`)."""
