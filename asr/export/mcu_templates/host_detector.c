// Host check of the decision step: float32 posteriors [windows][DETECTOR_NUM_LABELS] of consecutive windows of a
// stream (hop DETECTOR_HOP_FRAMES) on stdin -> "TIME_S LABEL_INDEX SCORE" per detection on stdout.
// Build: gcc -O2 -I. detector.c host_detector.c -o host_detector (tests compare it with the Python Decider).
#include <stdio.h>

#include "detector.h"
#include "frontend_config.h"

int main(void) {
  static DetectorState state;
  detector_init(&state);
  float posteriors[DETECTOR_NUM_LABELS];
  for (long end = FRONTEND_NUM_FRAMES; fread(posteriors, sizeof(float), DETECTOR_NUM_LABELS, stdin) == DETECTOR_NUM_LABELS;
       end += DETECTOR_HOP_FRAMES) {
    const float time_s = (float)((end - 1) * FRONTEND_HOP + FRONTEND_N_FFT) / FRONTEND_SAMPLE_RATE;
    float score;
    const int fired = detector_update(&state, time_s, posteriors, &score);
    if (fired >= 0) printf("%.6f %d %.7f\n", time_s, fired, score);
  }
  return 0;
}
