// The keyword model's feature front end in C: PCM -> normalised log-mel -> int8 model input.
// Same numbers as asr/runtime/frontend.py (FeatureSpec): the Hann window and mel filterbank are generated
// from it into frontend_config.h / frontend_tables.c by `asr export --mcu`, so C and numpy cannot drift.
#ifndef ASR_FRONTEND_H_
#define ASR_FRONTEND_H_

#include <stdint.h>

#include "frontend_config.h"

#ifdef __cplusplus
extern "C" {
#endif

// One frame of FRONTEND_N_FFT float samples in [-1, 1] -> FRONTEND_N_MELS normalised log-mel values.
void frontend_frame(const float* frame, float* features);

// A window of FRONTEND_WINDOW_SAMPLES int16 PCM samples -> FRONTEND_NUM_FRAMES x FRONTEND_N_MELS features.
void frontend_window(const int16_t* pcm, float* features);

// Features -> int8 model input with the model's input scale and zero point (round half away from zero, clamp).
void frontend_quantize(const float* features, int count, float scale, int zero_point, int8_t* out);

#ifdef __cplusplus
}
#endif

#endif  // ASR_FRONTEND_H_
