// See detector.h. Mirrors Decider.update and Detector.score of asr/runtime/detector.py step by step.
#include "detector.h"

#include <string.h>

void detector_init(DetectorState* state) {
  memset(state, 0, sizeof(*state));
  for (int i = 0; i < DETECTOR_NUM_LABELS; i++) state->armed[i] = 1;
}

int detector_update(DetectorState* state, float time_s, const float* posteriors, float* score) {
  memcpy(state->recent[state->next], posteriors, sizeof(state->recent[0]));
  state->next = (state->next + 1) % DETECTOR_SMOOTH_WINDOWS;
  if (state->count < DETECTOR_SMOOTH_WINDOWS) state->count++;
  const int first = (state->next - state->count + DETECTOR_SMOOTH_WINDOWS) % DETECTOR_SMOOTH_WINDOWS;
  int best = -1;
  float best_score = 0.0f;
  for (int i = 0; i < DETECTOR_NUM_LABELS; i++) {
    if (!kDetectorIsKeyword[i]) continue;
    float sum = 0.0f;  // oldest first, as numpy sums: the same float rounding
    for (int w = 0; w < state->count; w++) sum += state->recent[(first + w) % DETECTOR_SMOOTH_WINDOWS][i];
    const float mean = sum / (float)state->count;
    if (mean < kDetectorThresholds[i]) {
      state->armed[i] = 1;
    } else if (state->armed[i]) {
      // The highest average wins; on a tie, the label later in alphabetical order (Python's max over tuples).
      if (best < 0 || mean > best_score || (mean == best_score && strcmp(kDetectorLabels[i], kDetectorLabels[best]) > 0)) {
        best = i;
        best_score = mean;
      }
    }
  }
  if (best < 0 || (state->fired_before && time_s - state->last_fired_s < DETECTOR_REFRACTORY_S)) return -1;
  state->armed[best] = 0;
  state->fired_before = 1;
  state->last_fired_s = time_s;
  *score = best_score;
  return best;
}
