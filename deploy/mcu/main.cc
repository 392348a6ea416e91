// A small TFLite Micro keyword app (like micro_speech): PCM in, features, int8 inference, label out.
// All model facts (shapes, quantization, labels, arena size, ops) come from the files `asr export --mcu`
// generated next to this one. On a board, replace ReadPcm() with the microphone driver (I2S on an ESP32-S3).
#include <cstdint>
#include <cstdio>

#include "frontend.h"
#include "model_data.h"
#include "model_settings.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {
alignas(16) uint8_t tensor_arena[kTensorArenaSize];
int16_t pcm[kWindowSamples];
float features[kNumFrames * kNumMels];

// Host build: 16 kHz mono int16 PCM on stdin, one window at a time. Returns false at end of input.
bool ReadPcm(int16_t* out, int count) {
  return fread(out, sizeof(int16_t), count, stdin) == static_cast<size_t>(count);
}
}  // namespace

// The app loop; returns non-zero on a setup error.
int RunKeywordApp() {
  const tflite::Model* model = tflite::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    printf("model schema %lu != supported %d\n", static_cast<unsigned long>(model->version()), TFLITE_SCHEMA_VERSION);
    return 1;
  }
  static ModelOpResolver resolver;
  if (RegisterModelOps(resolver) != kTfLiteOk) return 1;
  static tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, kTensorArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    printf("AllocateTensors failed: kTensorArenaSize %d is too small\n", kTensorArenaSize);
    return 1;
  }
  printf("arena used: %u of %d bytes\n", static_cast<unsigned>(interpreter.arena_used_bytes()), kTensorArenaSize);
  TfLiteTensor* input = interpreter.input(0);
  TfLiteTensor* output = interpreter.output(0);

  while (ReadPcm(pcm, kWindowSamples)) {
    frontend_window(pcm, features);
    frontend_quantize(features, kNumFrames * kNumMels, kInputScale, kInputZeroPoint, input->data.int8);
    if (interpreter.Invoke() != kTfLiteOk) return 1;
    int best = 0;
    for (int i = 1; i < kNumLabels; i++) {
      if (output->data.int8[i] > output->data.int8[best]) best = i;
    }
    const float score = (output->data.int8[best] - kOutputZeroPoint) * kOutputScale;
    printf("%s %.3f\n", kLabels[best], score);
  }
  return 0;
}

#ifdef ESP_PLATFORM
extern "C" void app_main(void) { RunKeywordApp(); }
#else
int main() { return RunKeywordApp(); }
#endif
