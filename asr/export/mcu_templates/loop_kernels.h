// The WHILE loop's counter ops: i + 1 (ADD) in the body and i < depth (LESS) in the condition, int32 scalars.
// TFLite Micro registers LESS, and ADD beside its int8 kernel, only with every type's path (float, int16, int64...:
// 11 KB of flash on a Cortex-M4 with CMSIS-NN, BENCHMARKS.md section 7) for these two one-line sums. Here int32
// elementwise ops (same shapes, or one input a scalar) are computed in place, and everything else goes to the op's
// own kernel, so op_resolver.h names ADD's int8 kernel and no LESS kernel.
#pragma once

#include "tensorflow/lite/core/c/builtin_op_data.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_utils.h"

namespace kws {

inline int32_t AddInt32(int32_t a, int32_t b) { return a + b; }
inline bool LessInt32(int32_t a, int32_t b) { return a < b; }

// True if the node is an int32 op this file computes: int32 inputs, each of the output's size or a scalar.
inline bool IsInt32Elementwise(TfLiteContext* context, TfLiteNode* node) {
  const TfLiteEvalTensor* a = tflite::micro::GetEvalInput(context, node, 0);
  const TfLiteEvalTensor* b = tflite::micro::GetEvalInput(context, node, 1);
  const int n = tflite::ElementCount(*tflite::micro::GetEvalOutput(context, node, 0)->dims);
  const int na = tflite::ElementCount(*a->dims), nb = tflite::ElementCount(*b->dims);
  return a->type == kTfLiteInt32 && b->type == kTfLiteInt32 && (na == n || na == 1) && (nb == n || nb == 1);
}

template <typename Out, Out (*kOp)(int32_t, int32_t)>
TfLiteStatus EvalInt32(TfLiteContext* context, TfLiteNode* node) {
  const TfLiteEvalTensor* a = tflite::micro::GetEvalInput(context, node, 0);
  const TfLiteEvalTensor* b = tflite::micro::GetEvalInput(context, node, 1);
  TfLiteEvalTensor* out = tflite::micro::GetEvalOutput(context, node, 0);
  const int n = tflite::ElementCount(*out->dims);
  const int step_a = tflite::ElementCount(*a->dims) == 1 ? 0 : 1, step_b = tflite::ElementCount(*b->dims) == 1 ? 0 : 1;
  const int32_t* x = tflite::micro::GetTensorData<int32_t>(a);
  const int32_t* y = tflite::micro::GetTensorData<int32_t>(b);
  Out* z = tflite::micro::GetTensorData<Out>(out);
  for (int i = 0; i < n; i++) z[i] = kOp(x[i * step_a], y[i * step_b]);
  return kTfLiteOk;
}

// ---- ADD: int32 without a fused activation here, everything else to Kernel ----

template <TFLMRegistration (*Kernel)()>
TfLiteStatus AddInt32OrEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* params = static_cast<const TfLiteAddParams*>(node->builtin_data);
  if (params->activation == kTfLiteActNone && IsInt32Elementwise(context, node)) {
    return EvalInt32<int32_t, AddInt32>(context, node);
  }
  return Kernel().invoke(context, node);
}

template <TFLMRegistration (*Kernel)()>
TFLMRegistration RegisterAddInt32Or() {
  TFLMRegistration registration = Kernel();
  registration.invoke = AddInt32OrEval<Kernel>;
  return registration;
}

// ---- LESS on int32 only ----

inline TfLiteStatus LessInt32Prepare(TfLiteContext* context, TfLiteNode* node) {
  TF_LITE_ENSURE(context, IsInt32Elementwise(context, node));
  TF_LITE_ENSURE_TYPES_EQ(context, tflite::micro::GetEvalOutput(context, node, 0)->type, kTfLiteBool);
  return kTfLiteOk;
}

inline TFLMRegistration RegisterLessInt32() {
  return tflite::micro::RegisterOp(nullptr, LessInt32Prepare, EvalInt32<bool, LessInt32>);
}

}  // namespace kws
