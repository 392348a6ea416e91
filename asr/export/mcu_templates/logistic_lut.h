// int8 LOGISTIC as a 256-entry table. An int8 op's output depends only on its input byte, so Prepare fills the
// table by running TFLite Micro's own reference kernel on all 256 inputs: the same outputs, one load per element
// instead of a fixed-point exp and reciprocal (the GLU gates made LOGISTIC a fifth of a Cortex-M4's instructions
// per window, BENCHMARKS.md section 7). Other types fall through to the reference kernel.
#pragma once

#include "tensorflow/lite/kernels/internal/reference/integer_ops/logistic.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/logistic.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace kws {

struct LogisticLut {
  tflite::OpDataLogistic params;  // first, so that the reference Prepare and Eval can use node->user_data
  bool int8;
  int8_t table[256];
};

inline void* LogisticLutInit(TfLiteContext* context, const char*, size_t) {
  return context->AllocatePersistentBuffer(context, sizeof(LogisticLut));
}

inline TfLiteStatus LogisticLutPrepare(TfLiteContext* context, TfLiteNode* node) {
  TF_LITE_ENSURE_STATUS(tflite::LogisticPrepare(context, node));
  auto* lut = static_cast<LogisticLut*>(node->user_data);
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  TfLiteTensor* input = micro_context->AllocateTempInputTensor(node, tflite::kLogisticInputTensor);
  TfLiteTensor* output = micro_context->AllocateTempOutputTensor(node, tflite::kLogisticOutputTensor);
  lut->int8 = input->type == kTfLiteInt8 && output->type == kTfLiteInt8;
  micro_context->DeallocateTempTfLiteTensor(input);
  micro_context->DeallocateTempTfLiteTensor(output);
  if (lut->int8) {
    int8_t every[256];
    for (int i = 0; i < 256; i++) every[i] = static_cast<int8_t>(i - 128);
    const tflite::OpDataLogistic& p = lut->params;
    tflite::reference_integer_ops::Logistic(p.input_zero_point, p.input_range_radius, p.input_multiplier,
                                            p.input_left_shift, 256, every, lut->table);
  }
  return kTfLiteOk;
}

inline TfLiteStatus LogisticLutEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* lut = static_cast<const LogisticLut*>(node->user_data);
  if (!lut->int8) return tflite::Register_LOGISTIC().invoke(context, node);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, tflite::kLogisticInputTensor);
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, tflite::kLogisticOutputTensor);
  const int8_t* in = tflite::micro::GetTensorData<int8_t>(input);
  int8_t* out = tflite::micro::GetTensorData<int8_t>(output);
  const int count = tflite::micro::GetTensorShape(input).FlatSize();
  for (int i = 0; i < count; i++) out[i] = lut->table[in[i] + 128];
  return kTfLiteOk;
}

inline TFLMRegistration RegisterLogisticLut() {
  return tflite::micro::RegisterOp(LogisticLutInit, LogisticLutPrepare, LogisticLutEval);
}

}  // namespace kws
