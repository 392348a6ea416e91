// The bundle's model, checked before the interpreter reads it, so that a corrupt or mismatched model_data.cc stops
// at start-up with a message instead of a fault inside TFLite Micro.
#pragma once

#include <cstdint>

#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

// The model in `data`: a valid TFLite flatbuffer (flatbuffers' own verifier), of the schema version this TFLite
// Micro reads, whose every op `resolver` registers. nullptr, after printing what is wrong, if not.
const tflite::Model* CheckedModel(const uint8_t* data, unsigned int size, const tflite::MicroOpResolver& resolver);
