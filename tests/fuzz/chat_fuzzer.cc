// Fuzz target: sequences of raw ClientFrames on one Chat stream (byte 0 is
// the credential, then length-prefixed frames; see rpc_fuzzing.h).

#include <cstddef>
#include <cstdint>

#include "tests/fuzz/rpc_fuzzing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  im::fuzz::FuzzMethodInput("im.message.v1.MessageService", "Chat", data, size);
  return 0;
}
