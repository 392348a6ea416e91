// Host check of the C front end: float32 mono samples on stdin -> float32 features [frames][n_mels] on stdout.
// Build: gcc -O2 -I. frontend.c frontend_tables.c host_features.c -lm -o host_features (tests compare it with the numpy front end).
#include <stdio.h>
#include <stdlib.h>

#include "frontend.h"

int main(void) {
  size_t cap = 1 << 16, n = 0;
  float* audio = malloc(cap * sizeof(float));
  size_t got;
  while ((got = fread(audio + n, sizeof(float), cap - n, stdin)) > 0) {
    n += got;
    if (n == cap) audio = realloc(audio, (cap *= 2) * sizeof(float));
  }
  float features[FRONTEND_N_MELS];
  for (size_t start = 0; start + FRONTEND_N_FFT <= n; start += FRONTEND_HOP) {
    frontend_frame(audio + start, features);
    fwrite(features, sizeof(float), FRONTEND_N_MELS, stdout);
  }
  free(audio);
  return 0;
}
