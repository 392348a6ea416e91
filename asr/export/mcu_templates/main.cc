// A TFLite Micro keyword app (like micro_speech): 16 kHz int16 PCM in, the C front end, int8 inference, and the
// Raspberry Pi detector's decision step (detector.c). All model facts (shapes, quantization, labels, arena size,
// ops, thresholds) come from the files `asr export --mcu` generated next to this one.
//
//   kws [--stream] [PCM_FILE|-] [INPUT_DUMP]
// Clip mode (default): the input is a sequence of 1 s clips; one line per clip:
//   result LABEL SCORE Q0 Q1 ... (the label, its dequantized score, and the raw int8 outputs)
// and INPUT_DUMP, if named, receives each clip's int8 model input (how `asr firmware` checks the front end).
// --stream: the input is one continuous recording, as from a microphone; the model runs every
// DETECTOR_HOP_FRAMES feature frames on the latest window, and each detection prints
//   detection TIME_S LABEL SCORE
// On a board, replace ReadPcm() with the microphone driver (I2S on an ESP32-S3).
// A streaming step model (kStreaming: a causal model, `asr export` of `model.causal`) instead runs once every
// kFramesPerStep feature frames on the latest kStepFrames, computing one encoder frame from its caches (which the
// model keeps in kResourceVariables resource variables, in the arena); the keyword head is the mean of the last
// kHeadFrames steps' logits. Every stream and every clip starts from the caches kWarmupSteps steps of digital
// silence leave; in clip mode the raw outputs after SCORE are the last kHeadFrames steps' int8 sums.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "detector.h"
#include "frontend.h"
#include "model_check.h"
#include "model_data.h"
#include "model_settings.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_resource_variable.h"

#ifdef KWS_PROFILE  // the instruction counter of `asr firmware`'s emulated boards
#include "kws_profile.h"
static OpProfiler op_profiler;
#define KWS_OP_PROFILER (&op_profiler)
#else
static inline uint64_t ProfileTicks() { return 0; }
static inline void ProfileReport(uint64_t, uint64_t, uint64_t) {}
#define KWS_OP_PROFILER nullptr
#endif

static_assert(kNumFrames == FRONTEND_NUM_FRAMES && kNumMels == FRONTEND_N_MELS, "front end and model disagree");

namespace {
alignas(16) uint8_t tensor_arena[kTensorArenaSize];
// The latest window's int8 features as a ring of frames (the model's input tensor lives in the arena, which the
// interpreter reuses during Invoke, so it cannot hold features across hops).
int8_t feature_ring[kNumFrames * kNumMels];
int ring_next = 0;  // the frame slot written next (= the oldest frame once the ring is full)
float frame[FRONTEND_N_FFT];  // the samples of the next frame, in [-1, 1]
float mel[FRONTEND_N_MELS];
int16_t hop_pcm[FRONTEND_HOP];
float posteriors[kNumLabels];
// The streaming step's last steps' logits.
int8_t head[kHeadFrames][kNumLabels];
int head_next = 0, head_count = 0;

bool ReadPcm(FILE* in, int16_t* out, int count) {
  return fread(out, sizeof(int16_t), count, in) == static_cast<size_t>(count);
}

// Reads `count` samples into the end of `frame` (after shifting it left by `count`). False at end of input.
bool ReadIntoFrame(FILE* in, int count) {
  int16_t* pcm = hop_pcm;
  for (int done = 0; done < count; done += FRONTEND_HOP) {
    const int n = count - done < FRONTEND_HOP ? count - done : FRONTEND_HOP;
    if (!ReadPcm(in, pcm, n)) return false;
    memmove(frame, frame + n, (FRONTEND_N_FFT - n) * sizeof(float));
    for (int i = 0; i < n; i++) frame[FRONTEND_N_FFT - n + i] = pcm[i] * (1.0f / 32768.0f);
  }
  return true;
}

// The C front end on `frame`, quantized into the ring.
void PushFrame() {
  frontend_frame(frame, mel);
  frontend_quantize(mel, kNumMels, kInputScale, kInputZeroPoint, feature_ring + ring_next * kNumMels);
  ring_next = (ring_next + 1) % kNumFrames;
}

// Copies the ring, oldest frame first, into the model input and runs the model.
TfLiteStatus RunModel(tflite::MicroInterpreter& interpreter) {
  int8_t* input = interpreter.input(0)->data.int8;
  const int older = (kNumFrames - ring_next) * kNumMels;
  memcpy(input, feature_ring + ring_next * kNumMels, older);
  memcpy(input + older, feature_ring, ring_next * kNumMels);
  return interpreter.Invoke();
}

TfLiteStatus RunStep(tflite::MicroInterpreter& interpreter);

// The caches a stream starts with: empty (Reset puts each variable at its real zero), then kWarmupSteps steps of
// digital silence, after which every cache holds only silence, as the Python detector starts
// (asr.features.silence_features); and no head frames yet.
TfLiteStatus ResetStream(tflite::MicroInterpreter& interpreter) {
  if (interpreter.Reset() != kTfLiteOk) return kTfLiteError;
  memset(frame, 0, sizeof(frame));
  frontend_frame(frame, mel);
  frontend_quantize(mel, kNumMels, kInputScale, kInputZeroPoint, feature_ring);
  for (int f = 1; f < kNumFrames; f++) memcpy(feature_ring + f * kNumMels, feature_ring, kNumMels);
  ring_next = 0;
  for (int step = 0; step < kWarmupSteps; step++) {
    if (RunStep(interpreter) != kTfLiteOk) return kTfLiteError;
  }
  head_next = head_count = 0;
  return kTfLiteOk;
}

// One streaming step on the latest kStepFrames frames of the ring (the model moves its caches on); its logits join
// the head.
TfLiteStatus RunStep(tflite::MicroInterpreter& interpreter) {
  int8_t* input = interpreter.input(0)->data.int8;
  for (int f = 0; f < kStepFrames; f++) {
    const int slot = (ring_next - kStepFrames + f + kNumFrames) % kNumFrames;
    memcpy(input + f * kNumMels, feature_ring + slot * kNumMels, kNumMels);
  }
  if (interpreter.Invoke() != kTfLiteOk) return kTfLiteError;
  memcpy(head[head_next], interpreter.output(0)->data.int8, kNumLabels);
  head_next = (head_next + 1) % kHeadFrames;
  head_count += head_count < kHeadFrames;
  return kTfLiteOk;
}

// A streaming step whose instructions are added to `ticks` (the profile counts them as model work).
TfLiteStatus TimedStep(tflite::MicroInterpreter& interpreter, uint64_t* ticks) {
  const uint64_t start = ProfileTicks();
  const TfLiteStatus status = RunStep(interpreter);
  *ticks += ProfileTicks() - start;
  return status;
}

// Whether the frame just pushed (the `frames`-th of the stream or clip) completes a streaming step's input.
bool StepDue(long frames) { return frames >= kStepFrames && (frames - kStepFrames) % kFramesPerStep == 0; }

// The head's int8 sums over its last steps (the clip mode's raw outputs) and their mean, dequantized.
void HeadScores(int32_t* sums, float* mean) {
  for (int i = 0; i < kNumLabels; i++) {
    sums[i] = 0;
    for (int j = 0; j < head_count; j++) sums[i] += head[j][i];
    mean[i] = (static_cast<float>(sums[i]) / head_count - kOutputZeroPoint) * kOutputScale;
  }
}

// `value` with `places` decimals: newlib-nano's printf, which the Cortex-M images link, has no %f.
void PrintFixed(float value, int places) {
  long scale = 1;
  for (int i = 0; i < places; i++) scale *= 10;
  const long v = lroundf(fabsf(value) * scale);
  printf("%s%ld.%0*ld", value < 0 && v != 0 ? "-" : "", v / scale, places, v % scale);
}

// Class probabilities from dequantized outputs `out` (in place: a softmax unless the model outputs probabilities).
void Softmax(float* out) {
  float top = -INFINITY, sum = 0.0f;
  for (int i = 0; i < kNumLabels; i++) top = out[i] > top ? out[i] : top;
  if (kOutputIsProbabilities) return;
  for (int i = 0; i < kNumLabels; i++) sum += (out[i] = expf(out[i] - top));
  for (int i = 0; i < kNumLabels; i++) out[i] /= sum;
}

// The latest model outputs as class probabilities: the window model's, or the streaming head's mean.
void Posteriors(tflite::MicroInterpreter& interpreter, float* out) {
  if (kStreaming) {
    static int32_t sums[kNumLabels];
    HeadScores(sums, out);
  } else {
    const int8_t* q = interpreter.output(0)->data.int8;
    for (int i = 0; i < kNumLabels; i++) out[i] = (q[i] - kOutputZeroPoint) * kOutputScale;
  }
  Softmax(out);
}

int RunClips(tflite::MicroInterpreter& interpreter, FILE* in, FILE* dump) {
  const int8_t* output = interpreter.output(0)->data.int8;
  const int used = FRONTEND_N_FFT + (kNumFrames - 1) * FRONTEND_HOP;  // samples the frames cover
  static int16_t rest[kWindowSamples - FRONTEND_N_FFT - (kNumFrames - 1) * FRONTEND_HOP + 1];
  static int32_t sums[kNumLabels];
  while (true) {
    if (kStreaming && ResetStream(interpreter) != kTfLiteOk) return 1;  // not a clip's work: outside its profile
    const uint64_t t0 = ProfileTicks();
    uint64_t step_ticks = 0;
    ring_next = 0;
    for (int f = 1; f <= kNumFrames; f++) {
      if (!ReadIntoFrame(in, f == 1 ? FRONTEND_N_FFT : FRONTEND_HOP)) return 0;
      PushFrame();
      if (kStreaming && StepDue(f) && TimedStep(interpreter, &step_ticks) != kTfLiteOk) return 1;
    }
    if (!ReadPcm(in, rest, kWindowSamples - used)) return 0;
    if (dump != nullptr) fwrite(feature_ring, 1, sizeof(feature_ring), dump);
    const uint64_t t1 = ProfileTicks();
    if (!kStreaming && RunModel(interpreter) != kTfLiteOk) return 1;
    const uint64_t t2 = ProfileTicks();
    if (kStreaming) {
      HeadScores(sums, posteriors);
    } else {
      for (int i = 0; i < kNumLabels; i++) sums[i] = output[i];
    }
    int best = 0;
    for (int i = 1; i < kNumLabels; i++) best = sums[i] > sums[best] ? i : best;
    printf("result %s ", kLabels[best]);
    const float count = kStreaming ? static_cast<float>(head_count) : 1.0f;
    PrintFixed((sums[best] / count - kOutputZeroPoint) * kOutputScale, 4);
    for (int i = 0; i < kNumLabels; i++) printf(" %ld", static_cast<long>(sums[i]));
    printf("\n");
    ProfileReport(t1 - t0 - step_ticks, t2 - t1 + step_ticks, 0);
  }
}

int RunStream(tflite::MicroInterpreter& interpreter, FILE* in) {
  static DetectorState detector;
  detector_init(&detector);
  if (kStreaming && ResetStream(interpreter) != kTfLiteOk) return 1;
  ring_next = 0;
  if (!ReadIntoFrame(in, FRONTEND_N_FFT)) return 0;
  PushFrame();
  uint64_t t0 = ProfileTicks(), step_ticks = 0;  // a streaming model's steps since the last decision
  for (long frames = 1;; frames++) {
    if (kStreaming && StepDue(frames) && TimedStep(interpreter, &step_ticks) != kTfLiteOk) return 1;
    if (frames >= kNumFrames && (frames - kNumFrames) % DETECTOR_HOP_FRAMES == 0) {
      const uint64_t t1 = ProfileTicks();
      if (!kStreaming && RunModel(interpreter) != kTfLiteOk) return 1;
      const uint64_t t2 = ProfileTicks() + step_ticks;
      Posteriors(interpreter, posteriors);
      float score = 0.0f;
      // Stream time of the last sample the window saw, as in the Python detector.
      const float time_s = static_cast<float>((frames - 1) * FRONTEND_HOP + FRONTEND_N_FFT) / FRONTEND_SAMPLE_RATE;
      const int fired = detector_update(&detector, time_s, posteriors, &score);
      if (fired >= 0) {
        printf("detection ");
        PrintFixed(time_s, 3);
        printf(" %s ", kLabels[fired]);
        PrintFixed(score, 4);
        printf("\n");
      }
      const uint64_t t3 = ProfileTicks() + step_ticks;
      ProfileReport(t1 - t0 - step_ticks, t2 - t1, t3 - t2);
      t0 = ProfileTicks();
      step_ticks = 0;
    }
    if (!ReadIntoFrame(in, FRONTEND_HOP)) return 0;
    PushFrame();
  }
}
}  // namespace

// The app; returns non-zero on a setup error, after printing what is wrong.
int RunKeywordApp(bool stream, FILE* in, FILE* dump) {
  static ModelOpResolver resolver;
  if (RegisterModelOps(resolver) != kTfLiteOk) {
    printf("error: op_resolver.h registers more ops than its MicroMutableOpResolver holds\n");
    return 1;
  }
  const tflite::Model* model = CheckedModel(g_model_data, g_model_data_len, resolver);
  if (model == nullptr) return 1;
  // The resource variables (a streaming model's caches) live in the arena, beside the tensors.
  static tflite::MicroAllocator* allocator = tflite::MicroAllocator::Create(tensor_arena, kTensorArenaSize);
  if (allocator == nullptr) {
    printf("error: kTensorArenaSize (%d) cannot hold TFLite Micro's allocator\n", kTensorArenaSize);
    return 1;
  }
  static tflite::MicroResourceVariables* variables =
      kResourceVariables > 0 ? tflite::MicroResourceVariables::Create(allocator, kResourceVariables) : nullptr;
  static tflite::MicroInterpreter interpreter(model, resolver, allocator, variables, KWS_OP_PROFILER);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    printf("error: AllocateTensors failed: kTensorArenaSize (%d) is too small, or a kernel rejected the model "
           "(`asr firmware --debug` builds TFLite Micro with its messages)\n", kTensorArenaSize);
    return 1;
  }
  const TfLiteTensor* input = interpreter.input(0);
  const TfLiteTensor* output = interpreter.output(0);
  if (interpreter.inputs_size() != 1 || input->type != kTfLiteInt8 ||
      input->bytes != static_cast<size_t>(kStepFrames * kNumMels) || output->type != kTfLiteInt8 ||
      output->bytes != static_cast<size_t>(kNumLabels)) {
    printf("error: the model's input or output is not the int8 [1, %d, %d] -> [1, %d] of model_settings.h\n",
           kStepFrames, kNumMels, kNumLabels);
    return 1;
  }
  printf("arena used: %u of %d bytes\n", static_cast<unsigned>(interpreter.arena_used_bytes()), kTensorArenaSize);
  return stream ? RunStream(interpreter, in) : RunClips(interpreter, in, dump);
}

#ifdef ESP_PLATFORM
extern "C" void app_main(void) { RunKeywordApp(true, stdin, nullptr); }
#else
int main(int argc, char** argv) {
#ifdef KWS_PROFILE
  ProfileStart();
#endif
  int arg = 1;
  const bool stream = argc > arg && strcmp(argv[arg], "--stream") == 0;
  arg += stream;
  FILE* in = stdin;
  if (argc > arg && strcmp(argv[arg], "-") != 0 && (in = fopen(argv[arg], "rb")) == nullptr) {
    printf("error: cannot open %s\n", argv[arg]);
    return 2;
  }
  FILE* dump = nullptr;
  if (argc > arg + 1 && (dump = fopen(argv[arg + 1], "wb")) == nullptr) {
    printf("error: cannot write %s\n", argv[arg + 1]);
    return 2;
  }
  const int rc = RunKeywordApp(stream, in, dump);
  if (dump != nullptr) fclose(dump);
#ifdef KWS_PROFILE
  ProfileStackReport();
  op_profiler.Report();
#endif
  return rc;
}
#endif
