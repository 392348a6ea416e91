// The feature front end in portable C99 (float only, no heap): see frontend.h.
// Why our own FFT: a 512-point radix-2 real FFT is ~40 lines and keeps the bundle free of platform DSP
// libraries; on an ESP32-S3 or Cortex-M it can be swapped for esp-dsp / CMSIS-DSP without changing results.
#include "frontend.h"

#include <math.h>

#define N FRONTEND_N_FFT
#define N_BINS (FRONTEND_N_FFT / 2 + 1)

static float re_[N];
static float im_[N];

// In-place iterative radix-2 complex FFT of length N (a power of two).
static void fft(float* re, float* im) {
  for (int i = 1, j = 0; i < N; i++) {  // bit-reversal permutation
    int bit = N >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      float t = re[i]; re[i] = re[j]; re[j] = t;
      t = im[i]; im[i] = im[j]; im[j] = t;
    }
  }
  for (int len = 2; len <= N; len <<= 1) {
    const int half = len >> 1;
    const int step = N / len;  // twiddle index stride into the table of N/2 twiddles
    for (int start = 0; start < N; start += len) {
      for (int k = 0; k < half; k++) {
        const float wr = kFrontendTwiddleCos[k * step];
        const float wi = -kFrontendTwiddleSin[k * step];
        const int a = start + k, b = a + half;
        const float xr = re[b] * wr - im[b] * wi;
        const float xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr; im[b] = im[a] - xi;
        re[a] += xr; im[a] += xi;
      }
    }
  }
}

void frontend_frame(const float* frame, float* features) {
  for (int i = 0; i < N; i++) {
    re_[i] = frame[i] * kFrontendWindow[i];
    im_[i] = 0.0f;
  }
  fft(re_, im_);
  for (int i = 0; i < N_BINS; i++) re_[i] = re_[i] * re_[i] + im_[i] * im_[i];  // power spectrum
  for (int m = 0; m < FRONTEND_N_MELS; m++) {
    // Triangular filters stored sparsely: bins [start, start + count) with their weights.
    const int start = kFrontendMelStart[m], count = kFrontendMelCount[m], offset = kFrontendMelOffset[m];
    float energy = 0.0f;
    for (int k = 0; k < count; k++) energy += re_[start + k] * kFrontendMelWeights[offset + k];
    features[m] = (logf(energy + FRONTEND_LOG_OFFSET) - FRONTEND_MEAN) / FRONTEND_STD;
  }
}

void frontend_window(const int16_t* pcm, float* features) {
  static float frame[N];
  for (int f = 0; f < FRONTEND_NUM_FRAMES; f++) {
    for (int i = 0; i < N; i++) frame[i] = pcm[f * FRONTEND_HOP + i] * (1.0f / 32768.0f);
    frontend_frame(frame, features + f * FRONTEND_N_MELS);
  }
}

void frontend_quantize(const float* features, int count, float scale, int zero_point, int8_t* out) {
  for (int i = 0; i < count; i++) {
    long q = lroundf(features[i] / scale) + zero_point;
    out[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
  }
}
