# The README's two commands: `make demo` (the whole chain on the embedded default) and `make test`.
# Every step writes its output atomically and is skipped when that output is already there.
SHELL := /bin/bash
VENV := .venv
ASR := $(VENV)/bin/asr
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# One instruction set for PyTorch's CPU kernels (ATen, oneDNN, MKL) on every machine: they pick their code by the CPU
# they run on, and AVX-512 and AVX2 kernels round differently, so one commit can train different models on two
# machines of one kind. The cost in training time is in BENCHMARKS.md section 1.
export ATEN_CPU_CAPABILITY := avx2
export ONEDNN_MAX_CPU_ISA := AVX2
export MKL_CBWR := AVX2

GEN := data/generated
RUN := runs/kws-tiny
OUT := artifacts/kws-tiny
STREAM := artifacts/stream
# The thresholds are chosen on a stream of the validation voices and reported on the test voices' stream, so the
# figures on the test voices are not tuned on them. The streams are adversarial (a negative word or sentence every
# ~8 s): the shared threshold is the best recall at this many false accepts per hour of the validation stream. The
# DET curve of the test stream (det.png) shows every other point.
STREAM_VAL := artifacts/stream-validation
TARGET_FA_PER_HOUR := 60
# The wake word gets a threshold of its own (`asr demo --wake-then-command` acts only after it): its best recall
# with at most one false wake in the 10-minute validation stream.
TARGET_WAKE_FA_PER_HOUR := 6

.PHONY: demo test setup lint corpus train export stream summary verifier compare clean

demo: setup corpus train export stream summary

setup:
	@bash tools/setup.sh

corpus: setup
	$(ASR) data synth --corpus commands --out $(GEN)
	$(ASR) data synth --corpus sentences --splits validation testing --out $(GEN)
	$(ASR) data info $(GEN)/commands

train: corpus
	$(ASR) train kws-tiny --run-dir $(RUN)

# The headline figures: the int8 model running in TFLite Micro, on the held-out voices, clean and noisy.
export: train
	@[ -f $(OUT)/manifest.json ] || $(ASR) export $(RUN)/best.pt $(OUT) --mcu
	$(ASR) eval $(RUN)/best.pt $(GEN)/commands --split testing --tflite $(OUT)
	$(ASR) eval $(RUN)/best.pt $(GEN)/commands --split testing --tflite $(OUT) --noisy

stream: export
	@[ -f $(STREAM)/events.csv ] || $(ASR) data stream --commands $(GEN)/commands --sentences $(GEN)/sentences --out-dir $(STREAM)
	@[ -f $(STREAM_VAL)/events.csv ] || $(ASR) data stream --commands $(GEN)/commands --sentences $(GEN)/sentences --split validation --out-dir $(STREAM_VAL)
	$(ASR) eval-stream $(OUT) $(STREAM_VAL)/stream.wav $(STREAM_VAL)/events.csv --out $(STREAM_VAL)/report.json --target-fa-per-hour $(TARGET_FA_PER_HOUR) --wake-fa-per-hour $(TARGET_WAKE_FA_PER_HOUR) --save-threshold
	$(ASR) eval-stream $(OUT) $(STREAM)/stream.wav $(STREAM)/events.csv --plot $(STREAM)/det.png --out $(STREAM)/report.json --at-saved-threshold
	$(ASR) demo $(OUT) --file $(STREAM)/stream.wav > $(STREAM)/detections.txt
	@echo "demo on the stream: $$(wc -l < $(STREAM)/detections.txt) detections (first 5 below; all in $(STREAM)/detections.txt)"; head -5 $(STREAM)/detections.txt

summary:
	$(ASR) summary $(OUT) $(STREAM)

# The Pi's second opinion (`asr verifier`, asr.runtime.verifier): the export with a head on Google's real-speech
# embedding, trained with real human speech (`asr data real-speech`, Debian packages) as negatives, then measured on
# the test stream and on held-out real speech. Not part of `make demo` (about 30 more minutes on 2 cores), and in an
# export directory of its own, so `make demo`'s figures stay the microcontroller model's.
REAL := data/real
PI_OUT := artifacts/kws-tiny-pi
verifier: stream
	@[ -f $(REAL)/sources.json ] || $(ASR) data real-speech --out $(REAL)
	@[ -f $(PI_OUT)/manifest.json ] || { rm -rf $(PI_OUT).part && cp -r $(OUT) $(PI_OUT).part && mv $(PI_OUT).part $(PI_OUT); }
	@[ -f $(PI_OUT)/verifier/verifier.json ] || $(ASR) verifier $(PI_OUT) --data $(GEN)/commands --speech $(REAL)
	$(ASR) eval-stream $(PI_OUT) $(STREAM)/stream.wav $(STREAM)/events.csv --at-saved-threshold --out $(PI_OUT)/stream-report.json
	$(PY) -m bench.real_false_accepts $(PI_OUT) --speech $(REAL) --stream-report $(PI_OUT)/stream-report.json --out $(PI_OUT)/real_false_accepts.json

# The lab (bench/, not installed): the tied model side by side with its peers (BENCHMARKS.md section 6).
compare: corpus
	$(PY) -m bench.compare

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: setup lint
	$(PY) -m pytest -q

clean:
	rm -rf runs artifacts
