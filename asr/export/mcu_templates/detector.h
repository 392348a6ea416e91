// The Raspberry Pi detector's decision step in C (asr/runtime/detector.py: posterior averaging + Decider):
// posteriors are averaged over the last DETECTOR_SMOOTH_WINDOWS windows; a keyword fires when its average reaches
// its threshold, at most once per DETECTOR_REFRACTORY_S (any keyword), and again only after it fell below the
// threshold. Labels starting with "_" (filler classes) never fire. Settings: detector_config.h (generated).
#ifndef ASR_DETECTOR_H_
#define ASR_DETECTOR_H_

#include "detector_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  float recent[DETECTOR_SMOOTH_WINDOWS][DETECTOR_NUM_LABELS];  // the latest windows' posteriors, a ring
  int count;  // windows in `recent` (up to DETECTOR_SMOOTH_WINDOWS)
  int next;   // the slot written next
  unsigned char armed[DETECTOR_NUM_LABELS];
  int fired_before;  // 0 until the first detection
  float last_fired_s;
} DetectorState;

void detector_init(DetectorState* state);

// Adds one window's posteriors (ending at stream time `time_s`); returns the label index that fires, with its
// averaged posterior in *score, or -1.
int detector_update(DetectorState* state, float time_s, const float* posteriors, float* score);

#ifdef __cplusplus
}
#endif

#endif  // ASR_DETECTOR_H_
