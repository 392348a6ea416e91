// Instruction counting for `asr firmware` images on QEMU's MPS2/MPS3 boards (included by main.cc when KWS_PROFILE
// is defined). QEMU run with `-icount shift=0` advances its virtual clock by exactly 1 ns per executed
// instruction, and SysTick counts that clock; a calibration loop of a known instruction count converts ticks to
// instructions (Debian's QEMU 7.2 ships no TCG plugins, and QEMU has no DWT cycle counter).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "tensorflow/lite/micro/micro_profiler_interface.h"

namespace kws_profile {
volatile uint32_t wraps = 0;
volatile uint32_t* const kSysTick = reinterpret_cast<volatile uint32_t*>(0xE000E010);  // CSR, RVR, CVR
constexpr uint32_t kCalibrationLoops = 1u << 22;  // 2 instructions each
constexpr uint32_t kStackPaint = 48 * 1024;       // bytes below main()'s frame painted to find the peak stack
constexpr uint32_t kPattern = 0xA5C3A5C3u;
uint32_t* stack_floor = nullptr;
}  // namespace kws_profile

extern "C" void SysTick_Handler(void) { kws_profile::wraps = kws_profile::wraps + 1; }

static inline uint64_t ProfileTicks() {
  using namespace kws_profile;
  uint32_t w, v;
  do {
    w = wraps;
    v = kSysTick[2];
  } while (w != wraps);
  return (static_cast<uint64_t>(w) << 24) + (0xFFFFFFu - v);
}

// A 64-bit count in decimal: newlib-nano's printf, which the images link, has no %llu.
static void PrintCount(uint64_t v) {
  if (v < 1000000000u) {
    printf("%lu", static_cast<unsigned long>(v));
  } else {
    printf("%lu%09lu", static_cast<unsigned long>(v / 1000000000u), static_cast<unsigned long>(v % 1000000000u));
  }
}

static inline void ProfileReport(uint64_t frontend, uint64_t model, uint64_t decide) {
  printf("profile window frontend_ticks=");
  PrintCount(frontend);
  printf(" model_ticks=");
  PrintCount(model);
  printf(" detector_ticks=");
  PrintCount(decide);
  printf("\n");
}

// Starts SysTick on the processor clock, reports the calibration loop, and paints the stack below the caller.
__attribute__((noinline)) static void ProfileStart() {
  using namespace kws_profile;
  kSysTick[1] = 0xFFFFFFu;
  kSysTick[2] = 0;
  kSysTick[0] = 7;  // processor clock, interrupt on wrap, enable
  while (kSysTick[2] == 0) {
  }  // the first tick loads the reload value
  uint32_t n = kCalibrationLoops;
  const uint64_t t0 = ProfileTicks();
  __asm volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
  const uint64_t t1 = ProfileTicks();
  printf("profile calibration instructions=%lu ticks=", static_cast<unsigned long>(2 * kCalibrationLoops));
  PrintCount(t1 - t0);
  printf("\n");
  uint32_t here;
  uint32_t* top = reinterpret_cast<uint32_t*>(reinterpret_cast<uintptr_t>(&here) & ~3u) - 64;
  stack_floor = top - kStackPaint / 4;
  for (uint32_t* p = stack_floor; p < top; p++) *p = kPattern;
}

// The deepest the stack went below ProfileStart()'s frame since it ran, in bytes.
static void ProfileStackReport() {
  using namespace kws_profile;
  uint32_t* p = stack_floor;
  while (*p == kPattern) p++;
  printf("profile stack_below_main=%lu paint=%lu\n", static_cast<unsigned long>(kStackPaint - (p - stack_floor) * 4),
         static_cast<unsigned long>(kStackPaint));
}

// Instructions per op type, each op's own (a WHILE's body ops are counted under their own names, not the WHILE's).
class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char* tag) override {
    int t = 0;
    while (t < tags_ && strcmp(names_[t], tag) != 0) t++;
    if (t == tags_ && tags_ < kMaxTags) names_[tags_++] = tag;
    stack_[depth_] = {t, ProfileTicks(), 0};
    return depth_++;
  }
  void EndEvent(uint32_t handle) override {
    const Open& open = stack_[handle];
    const uint64_t elapsed = ProfileTicks() - open.start;
    if (open.tag < kMaxTags) {
      self_[open.tag] += elapsed - open.children;
      count_[open.tag]++;
    }
    depth_ = handle;
    if (handle > 0) stack_[handle - 1].children += elapsed;
  }
  void Report() const {
    for (int t = 0; t < tags_; t++) {
      printf("profile op %s ticks=", names_[t]);
      PrintCount(self_[t]);
      printf(" calls=%lu\n", static_cast<unsigned long>(count_[t]));
    }
  }

 private:
  static constexpr int kMaxTags = 48;
  struct Open {
    int tag;
    uint64_t start, children;
  };
  const char* names_[kMaxTags] = {};
  uint64_t self_[kMaxTags] = {};
  uint32_t count_[kMaxTags] = {};
  int tags_ = 0;
  Open stack_[8] = {};
  uint32_t depth_ = 0;
};
