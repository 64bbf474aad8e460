// Fuzz target: raw requests to every RPC of im.history.v1.HistoryService on the
// in-process backend (see rpc_fuzzing.h for the input layout and the
// contract checked).

#include <cstddef>
#include <cstdint>

#include "tests/fuzz/rpc_fuzzing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  im::fuzz::FuzzRpcInput("im.history.v1.HistoryService", data, size);
  return 0;
}
