// Runs once at start-up, so it is built for size (-Os): flatbuffers' verifier instantiates a check for every table
// of the TFLite schema. The op check is ours because TFLite Micro's release build (no error strings) fails
// AllocateTensors on a missing op without saying which.
#include "model_check.h"

#include <cstdio>

#include "tensorflow/lite/micro/micro_interpreter.h"  // TFLITE_SCHEMA_VERSION
#include "tensorflow/lite/schema/schema_utils.h"

const tflite::Model* CheckedModel(const uint8_t* data, unsigned int size, const tflite::MicroOpResolver& resolver) {
  flatbuffers::Verifier verifier(data, size);
  if (!tflite::VerifyModelBuffer(verifier)) {
    printf("error: model_data.cc (%u bytes) is not a valid TFLite model flatbuffer\n", size);
    return nullptr;
  }
  const tflite::Model* model = tflite::GetModel(data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    printf("error: the model has TFLite schema version %lu; this TFLite Micro supports version %d\n",
           static_cast<unsigned long>(model->version()), TFLITE_SCHEMA_VERSION);
    return nullptr;
  }
  if (model->subgraphs() == nullptr || model->subgraphs()->size() == 0) {
    printf("error: the model has no subgraph\n");
    return nullptr;
  }
  const auto* codes = model->operator_codes();
  for (const tflite::SubGraph* subgraph : *model->subgraphs()) {
    if (subgraph->operators() == nullptr) continue;
    for (const tflite::Operator* node : *subgraph->operators()) {
      if (codes == nullptr || node->opcode_index() >= codes->size()) {
        printf("error: the model names op code %lu, which it does not define\n",
               static_cast<unsigned long>(node->opcode_index()));
        return nullptr;
      }
      const tflite::OperatorCode* code = codes->Get(node->opcode_index());
      const tflite::BuiltinOperator op = tflite::GetBuiltinCode(code);
      const char* custom = op == tflite::BuiltinOperator_CUSTOM && code->custom_code() ? code->custom_code()->c_str()
                                                                                       : nullptr;
      if ((custom ? resolver.FindOp(custom) : resolver.FindOp(op)) == nullptr) {
        printf("error: the model uses op %s, which op_resolver.h does not register (export the model again)\n",
               custom ? custom : tflite::EnumNameBuiltinOperator(op));
        return nullptr;
      }
    }
  }
  return model;
}
