// int8 kernels for row-wise ops: the LayerNorm's MEAN over the last axis, and ADD, SUB and MUL where one input is
// broadcast along the rows ([R, C] with [C], as gamma and beta) or along the columns ([R, C] with [R, 1], as the
// mean and 1/std); attention's SOFTMAX. TFLite Micro computes the first through generic N-d broadcast and reduce
// loops that index every element through shape arithmetic, and SOFTMAX with a fixed-point exp per element, twice
// (BENCHMARKS.md section 7). Here the outputs are the same, in fewer instructions:
// - MEAN sums each row in one pass, then rescales exactly as reference_ops::QuantizedMeanOrSum does;
// - ADD, SUB and MUL call the op's own kernel once per row on same-shape [C] views, so each row runs the
//   kernel's elementwise path (CMSIS-NN's where it has one); a per-row scalar is first spread over a row buffer;
// - SUB of a per-row scalar (the LayerNorm's x - mean) rescales that scalar once per row and x through a table;
// - SOFTMAX is reference_ops::Softmax with exp() read from a table: an int8 input's distance below its row's
//   maximum takes one of 256 values, so Prepare computes those exps once;
// - FULLY_CONNECTED over [R, C] rows is shown its output as [1, R, C]: CMSIS-NN's kernel then multiplies all rows as
//   one matrix (its 1x1-convolution path, which TFLM takes only for outputs of rank 3 or more) instead of one
//   vector at a time. The arithmetic is the same integer sum and per-channel requantisation.
// Everything else (other shapes and types) goes to the op's own kernel unchanged.
#pragma once

#include <cstring>
#include <new>

#include "tensorflow/lite/kernels/internal/common.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/micro_ops.h"
#include "tensorflow/lite/micro/kernels/reduce.h"
#include "tensorflow/lite/micro/kernels/softmax.h"
#include "tensorflow/lite/micro/kernels/sub.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace kws {

// A one-dimensional TfLiteIntArray (its data member is a flexible array).
struct Dims1 {
  int size = 1;
  int data[1];
};

inline int LastDim(const TfLiteIntArray* dims) { return dims->size ? dims->data[dims->size - 1] : 1; }

inline int FlatSize(const TfLiteIntArray* dims) {
  int n = 1;
  for (int i = 0; i < dims->size; i++) n *= dims->data[i];
  return n;
}

// ---- MEAN over the last axis ----

inline TfLiteStatus MeanLastAxisEval(TfLiteContext* context, TfLiteNode* node) {
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, 0);
  const TfLiteEvalTensor* axis = tflite::micro::GetEvalInput(context, node, 1);
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, 0);
  const int rank = input->dims->size;
  const int32_t* axes = axis->type == kTfLiteInt32 ? tflite::micro::GetTensorData<int32_t>(axis) : nullptr;
  const bool last_axis = axes && FlatSize(axis->dims) == 1 && rank > 0 && (axes[0] == rank - 1 || axes[0] == -1);
  const int cols = LastDim(input->dims);
  if (input->type != kTfLiteInt8 || output->type != kTfLiteInt8 || !last_axis || cols <= 0) {
    return tflite::Register_MEAN().invoke(context, node);
  }
  const auto* data = static_cast<const tflite::OpDataReduce*>(node->user_data);
  // reference_ops::QuantizedMeanOrSum folds 1/cols into the output multiplier this way
  int shift = 0;
  while ((static_cast<uint64_t>(cols) >> (shift + 1)) != 0) shift++;
  shift = std::min(shift, 32);
  shift = std::min(shift, 31 + data->shift);
  const int32_t multiplier = static_cast<int32_t>((static_cast<int64_t>(data->multiplier) << shift) / cols);
  const int out_shift = data->shift - shift;
  const int8_t* in = tflite::micro::GetTensorData<int8_t>(input);
  int8_t* out = tflite::micro::GetTensorData<int8_t>(output);
  const int rows = FlatSize(input->dims) / cols;
  for (int r = 0; r < rows; r++, in += cols) {
    int32_t sum = 0;
    for (int c = 0; c < cols; c++) sum += in[c];
    const int32_t centred = static_cast<int32_t>(sum - static_cast<int64_t>(data->input_zp) * cols);
    const int32_t value = tflite::MultiplyByQuantizedMultiplier(centred, multiplier, out_shift) + data->output_zp;
    out[r] = static_cast<int8_t>(std::min<int32_t>(std::max<int32_t>(value, -128), 127));
  }
  return kTfLiteOk;
}

inline TFLMRegistration RegisterMeanLastAxis() {
  TFLMRegistration registration = tflite::Register_MEAN();
  registration.invoke = MeanLastAxisEval;
  return registration;
}

// ---- ADD, SUB, MUL with a row or column broadcast ----

enum class Split { kNone, kAlongRows, kAlongCols };

// How `small` broadcasts against `out` when `full` is as large as `out`: along the rows ([C], any leading 1s) or
// along the columns ([.., R, 1] of the output's rank).
inline Split Classify(const TfLiteIntArray* full, const TfLiteIntArray* small, const TfLiteIntArray* out) {
  if (out->size < 2) return Split::kNone;
  const int cols = LastDim(out), rows = FlatSize(out) / cols;
  if (rows < 2 || cols < 2 || FlatSize(full) != rows * cols) return Split::kNone;
  if (FlatSize(small) == cols && LastDim(small) == cols) return Split::kAlongRows;
  if (small->size != out->size || LastDim(small) != 1 || FlatSize(small) != rows) return Split::kNone;
  for (int i = 0; i + 1 < out->size; i++) {
    if (small->data[i] != out->data[i]) return Split::kNone;
  }
  return Split::kAlongCols;
}

struct RowBroadcastData {
  void* inner = nullptr;  // the op's own kernel data
  Split split = Split::kNone;
  int small = 1;  // the broadcast input: 0 or 1
  int scratch = -1;  // scratch buffer index (kAlongCols): one row for a per-row scalar, or SUB's table
};

// A wrapper's Init: its `Data` (with `inner`, the op's own kernel data, first) in persistent memory.
template <typename Data, TFLMRegistration (*Inner)()>
void* InitWithInner(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = new (context->AllocatePersistentBuffer(context, sizeof(Data))) Data();
  const TFLMRegistration inner = Inner();
  data->inner = inner.init ? inner.init(context, buffer, length) : nullptr;
  return data;
}

// Run the op's own `fn` with its own data (`Data::inner`) in node->user_data.
template <typename Data, typename Fn>
TfLiteStatus WithInnerData(TfLiteNode* node, Fn fn) {
  auto* data = static_cast<Data*>(node->user_data);
  node->user_data = data->inner;
  const TfLiteStatus status = fn();
  node->user_data = data;
  return status;
}

// The op's own Prepare, then how its inputs broadcast; returns the output's row length.
template <TFLMRegistration (*Inner)()>
TfLiteStatus PrepareSplit(TfLiteContext* context, TfLiteNode* node, int* cols) {
  TF_LITE_ENSURE_STATUS(WithInnerData<RowBroadcastData>(node, [&] { return Inner().prepare(context, node); }));
  auto* data = static_cast<RowBroadcastData*>(node->user_data);
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  TfLiteTensor* a = micro_context->AllocateTempInputTensor(node, 0);
  TfLiteTensor* b = micro_context->AllocateTempInputTensor(node, 1);
  TfLiteTensor* out = micro_context->AllocateTempOutputTensor(node, 0);
  if (out->type == kTfLiteInt8) {
    data->small = FlatSize(a->dims) == FlatSize(out->dims) ? 1 : 0;
    data->split = data->small ? Classify(a->dims, b->dims, out->dims) : Classify(b->dims, a->dims, out->dims);
  }
  *cols = LastDim(out->dims);
  micro_context->DeallocateTempTfLiteTensor(a);
  micro_context->DeallocateTempTfLiteTensor(b);
  micro_context->DeallocateTempTfLiteTensor(out);
  return kTfLiteOk;
}

// RowBroadcastEval's scratch: one row, where a per-row scalar is spread over it.
inline TfLiteStatus RequestRowBuffer(TfLiteContext* context, RowBroadcastData* data, int cols) {
  if (data->split != Split::kAlongCols) return kTfLiteOk;
  return context->RequestScratchBufferInArena(context, cols, &data->scratch);
}

template <TFLMRegistration (*Inner)()>
TfLiteStatus RowBroadcastPrepare(TfLiteContext* context, TfLiteNode* node) {
  int cols = 0;
  TF_LITE_ENSURE_STATUS(PrepareSplit<Inner>(context, node, &cols));
  return RequestRowBuffer(context, static_cast<RowBroadcastData*>(node->user_data), cols);
}

template <TFLMRegistration (*Inner)()>
TfLiteStatus RowBroadcastEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const RowBroadcastData*>(node->user_data);
  auto inner = [&] { return WithInnerData<RowBroadcastData>(node, [&] { return Inner().invoke(context, node); }); };
  if (data->split == Split::kNone) return inner();
  TfLiteEvalTensor* small = tflite::micro::GetMutableEvalInput(context, node, data->small);
  TfLiteEvalTensor* full = tflite::micro::GetMutableEvalInput(context, node, 1 - data->small);
  TfLiteEvalTensor* out = tflite::micro::GetEvalOutput(context, node, 0);
  const int cols = LastDim(out->dims), rows = FlatSize(out->dims) / cols;

  const TfLiteEvalTensor saved_full = *full, saved_small = *small, saved_out = *out;
  Dims1 row_dims;
  row_dims.data[0] = cols;
  TfLiteIntArray* dims = reinterpret_cast<TfLiteIntArray*>(&row_dims);
  full->dims = small->dims = out->dims = dims;
  const bool along_cols = data->split == Split::kAlongCols;
  int8_t* row = along_cols ? static_cast<int8_t*>(context->GetScratchBuffer(context, data->scratch)) : nullptr;
  TfLiteStatus status = kTfLiteOk;
  for (int r = 0; r < rows && status == kTfLiteOk; r++) {
    full->data.int8 = saved_full.data.int8 + r * cols;
    out->data.int8 = saved_out.data.int8 + r * cols;
    if (along_cols) {
      std::memset(row, saved_small.data.int8[r], cols);
      small->data.int8 = row;
    }
    status = inner();
  }
  *full = saved_full;
  *small = saved_small;
  *out = saved_out;
  return status;
}

template <TFLMRegistration (*Inner)()>
TFLMRegistration RegisterRowBroadcast() {
  return tflite::micro::RegisterOp(InitWithInner<RowBroadcastData, Inner>, RowBroadcastPrepare<Inner>,
                                   RowBroadcastEval<Inner>);
}

// ---- SUB of a per-row scalar ----

// reference_ops::SubElementwise's rescaling of one int8 input.
inline int32_t SubScaled(int32_t offset, int32_t multiplier, int shift, int left_shift, int8_t value) {
  return tflite::MultiplyByQuantizedMultiplierSmallerThanOneExp((offset + value) * (1 << left_shift), multiplier,
                                                                shift);
}

// TFLM's SUB (CMSIS-NN has none) rescales both inputs and their difference per element: three fixed-point
// multiplies. Where the second input holds one value per row (x - mean), that value is rescaled once per row, and
// the first input once per element, or, where there are more elements than its 256 possible values, once per value
// into a table: in reference_ops::SubElementwise's arithmetic. `Inner` is TFLM's SUB, or SubPrepareOnly.
constexpr int kSubTableBytes = 256 * sizeof(int32_t);

inline bool SubOfRowScalar(const RowBroadcastData& data) { return data.split == Split::kAlongCols && data.small == 1; }

// Whether `b` holds one value per row of `a` ([.., R, C] and [.., R, 1]), one row included.
inline bool RowScalarOf(const TfLiteIntArray* a, const TfLiteIntArray* b) {
  if (a->size < 1 || b->size != a->size || LastDim(b) != 1) return false;
  for (int i = 0; i + 1 < a->size; i++) {
    if (a->data[i] != b->data[i]) return false;
  }
  return true;
}

// TFLM's SUB Prepare (sub_common.cc) and data, without its generic Eval (sub.cc: 7.5 KB of an M4F image): the inner
// kernel where the export found that every SUB subtracts a per-row scalar (asr.export.mcu.registration).
inline void* SubDataInit(TfLiteContext* context, const char*, size_t) {
  return context->AllocatePersistentBuffer(context, sizeof(tflite::OpDataSub));
}
inline TFLMRegistration SubPrepareOnly() { return tflite::micro::RegisterOp(SubDataInit, tflite::SubPrepare, nullptr); }

template <TFLMRegistration (*Inner)()>
TfLiteStatus SubRowsPrepare(TfLiteContext* context, TfLiteNode* node) {
  int cols = 0;
  TF_LITE_ENSURE_STATUS(PrepareSplit<Inner>(context, node, &cols));
  auto* data = static_cast<RowBroadcastData*>(node->user_data);
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  TfLiteTensor* a = micro_context->AllocateTempInputTensor(node, 0);
  TfLiteTensor* b = micro_context->AllocateTempInputTensor(node, 1);
  const bool int8 = a->type == kTfLiteInt8 && b->type == kTfLiteInt8;
  if (int8 && data->split == Split::kNone && RowScalarOf(a->dims, b->dims)) {  // one row: Classify leaves it
    data->split = Split::kAlongCols;
    data->small = 1;
  }
  const int elements = FlatSize(a->dims);
  micro_context->DeallocateTempTfLiteTensor(a);
  micro_context->DeallocateTempTfLiteTensor(b);
  if (!SubOfRowScalar(*data)) {
    TF_LITE_ENSURE_MSG(context, Inner().invoke != nullptr, "SUB: only x minus a per-row scalar is compiled in");
    return RequestRowBuffer(context, data, cols);
  }
  if (elements <= 256) return kTfLiteOk;
  return context->RequestScratchBufferInArena(context, kSubTableBytes, &data->scratch);
}

template <TFLMRegistration (*Inner)()>
TfLiteStatus SubRowsEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const RowBroadcastData*>(node->user_data);
  if (!SubOfRowScalar(*data)) return RowBroadcastEval<Inner>(context, node);
  const auto& sub = *static_cast<const tflite::OpDataSub*>(data->inner);
  const int8_t* x = tflite::micro::GetTensorData<int8_t>(tflite::micro::GetEvalInput(context, node, 0));
  const int8_t* row_scalar = tflite::micro::GetTensorData<int8_t>(tflite::micro::GetEvalInput(context, node, 1));
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, 0);
  int8_t* out = tflite::micro::GetTensorData<int8_t>(output);
  const int cols = LastDim(output->dims), rows = FlatSize(output->dims) / cols;
  auto scaled = [&](int8_t v) {
    return SubScaled(sub.input1_offset, sub.input1_multiplier, sub.input1_shift, sub.left_shift, v);
  };
  int32_t* table = data->scratch < 0 ? nullptr : static_cast<int32_t*>(context->GetScratchBuffer(context, data->scratch));
  if (table != nullptr) {  // x + 128 -> rescaled
    for (int v = -128; v < 128; v++) table[v + 128] = scaled(static_cast<int8_t>(v));
  }
  for (int r = 0; r < rows; r++, x += cols, out += cols) {
    const int32_t scalar =
        SubScaled(sub.input2_offset, sub.input2_multiplier, sub.input2_shift, sub.left_shift, row_scalar[r]);
    for (int c = 0; c < cols; c++) {
      const int32_t value = table != nullptr ? table[x[c] + 128] : scaled(x[c]);
      const int32_t raw = tflite::MultiplyByQuantizedMultiplierSmallerThanOneExp(value - scalar, sub.output_multiplier,
                                                                                 sub.output_shift) +
                          sub.output_offset;
      out[c] = static_cast<int8_t>(
          std::min<int32_t>(std::max<int32_t>(raw, sub.output_activation_min), sub.output_activation_max));
    }
  }
  return kTfLiteOk;
}

template <TFLMRegistration (*Inner)()>
TFLMRegistration RegisterSubRows() {
  return tflite::micro::RegisterOp(InitWithInner<RowBroadcastData, Inner>, SubRowsPrepare<Inner>,
                                   SubRowsEval<Inner>);
}

// ---- FULLY_CONNECTED over rows as one matrix product ----

struct Dims3 {
  int size = 3;
  int data[3];
};

template <TFLMRegistration (*Inner)()>
TfLiteStatus FullyConnectedRowsEval(TfLiteContext* context, TfLiteNode* node) {
  TfLiteEvalTensor* out = tflite::micro::GetEvalOutput(context, node, 0);
  if (out->type != kTfLiteInt8 || out->dims->size != 2 || out->dims->data[0] < 2) {
    return Inner().invoke(context, node);
  }
  TfLiteIntArray* saved = out->dims;
  Dims3 rows;
  rows.data[0] = 1;
  rows.data[1] = saved->data[0];
  rows.data[2] = saved->data[1];
  out->dims = reinterpret_cast<TfLiteIntArray*>(&rows);
  const TfLiteStatus status = Inner().invoke(context, node);
  out->dims = saved;
  return status;
}

template <TFLMRegistration (*Inner)()>
TFLMRegistration RegisterFullyConnectedRows() {
  TFLMRegistration registration = Inner();
  registration.invoke = FullyConnectedRowsEval<Inner>;
  return registration;
}

// ---- SOFTMAX with a table of exp() ----

struct SoftmaxTableData {
  void* inner = nullptr;  // the op's own kernel data: a tflite::SoftmaxParams first (reference, CMSIS-NN)
  bool int8 = false;
  int32_t exp[256];  // exp_on_negative_values of the rescaled difference d below the row's max, d = 0..255
};

// reference_ops::Softmax's fixed-point formats
using ScaledDiff = gemmlowp::FixedPoint<int32_t, 5>;
using ExpSum = gemmlowp::FixedPoint<int32_t, 12>;
using Fixed0 = gemmlowp::FixedPoint<int32_t, 0>;

template <TFLMRegistration (*Inner)()>
TfLiteStatus SoftmaxTablePrepare(TfLiteContext* context, TfLiteNode* node) {
  TF_LITE_ENSURE_STATUS(WithInnerData<SoftmaxTableData>(node, [&] { return Inner().prepare(context, node); }));
  auto* data = static_cast<SoftmaxTableData*>(node->user_data);
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  TfLiteTensor* input = micro_context->AllocateTempInputTensor(node, 0);
  TfLiteTensor* output = micro_context->AllocateTempOutputTensor(node, 0);
  data->int8 = input->type == kTfLiteInt8 && output->type == kTfLiteInt8;
  micro_context->DeallocateTempTfLiteTensor(input);
  micro_context->DeallocateTempTfLiteTensor(output);
  const auto* params = static_cast<const tflite::SoftmaxParams*>(data->inner);
  for (int d = 0; data->int8 && d < 256; d++) {
    if (-d < params->diff_min) continue;  // never read: such inputs give -128
    const int32_t scaled = tflite::MultiplyByQuantizedMultiplierGreaterThanOne(-d, params->input_multiplier,
                                                                              params->input_left_shift);
    data->exp[d] = gemmlowp::exp_on_negative_values(ScaledDiff::FromRaw(scaled)).raw();
  }
  return kTfLiteOk;
}

template <TFLMRegistration (*Inner)()>
TfLiteStatus SoftmaxTableEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const SoftmaxTableData*>(node->user_data);
  if (!data->int8) {
    return WithInnerData<SoftmaxTableData>(node, [&] { return Inner().invoke(context, node); });
  }
  const auto* params = static_cast<const tflite::SoftmaxParams*>(data->inner);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, 0);
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, 0);
  const int depth = LastDim(input->dims), rows = FlatSize(input->dims) / depth;
  const int8_t* in = tflite::micro::GetTensorData<int8_t>(input);
  int8_t* out = tflite::micro::GetTensorData<int8_t>(output);
  for (int r = 0; r < rows; r++, in += depth, out += depth) {
    int8_t max = -128;
    for (int c = 0; c < depth; c++) max = std::max(max, in[c]);
    ExpSum sum = ExpSum::Zero();
    for (int c = 0; c < depth; c++) {
      if (in[c] - max >= params->diff_min) sum = sum + gemmlowp::Rescale<12>(Fixed0::FromRaw(data->exp[max - in[c]]));
    }
    int bits_over_unit;
    const Fixed0 scale = Fixed0::FromRaw(tflite::GetReciprocal(sum.raw(), 12, &bits_over_unit));
    const int exponent = bits_over_unit + 31 - 8;
    for (int c = 0; c < depth; c++) {
      if (in[c] - max < params->diff_min) {
        out[c] = -128;
        continue;
      }
      const int32_t value =
          gemmlowp::RoundingDivideByPOT((scale * Fixed0::FromRaw(data->exp[max - in[c]])).raw(), exponent) - 128;
      out[c] = static_cast<int8_t>(std::min<int32_t>(std::max<int32_t>(value, -128), 127));
    }
  }
  return kTfLiteOk;
}

template <TFLMRegistration (*Inner)()>
TFLMRegistration RegisterSoftmaxTable() {
  return tflite::micro::RegisterOp(InitWithInner<SoftmaxTableData, Inner>, SoftmaxTablePrepare<Inner>,
                                   SoftmaxTableEval<Inner>);
}

}  // namespace kws
