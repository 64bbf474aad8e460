#ifndef IM_TESTS_FUZZ_RPC_FUZZING_H_
#define IM_TESTS_FUZZ_RPC_FUZZING_H_

#include <cstddef>
#include <cstdint>
#include <string>

// The body of the per-service fuzz targets: decodes one input into a call
// of one RPC of one service on the in-process FuzzBackend and checks the
// answer against the API's contract. A broken contract aborts the process
// (libFuzzer saves the input; the corpus replay test fails).
//
// Input layout:
//   byte 0      method index into the service's methods (modulo their count)
//   byte 1      Credential (modulo kCount)
//   the rest    the request message's wire bytes, sent as they are; for a
//               client-streaming method, frames of [2-byte little-endian
//               length][bytes] (a short last frame takes what is left)
//
// Contract checked for every answer:
//   - the status code is one a client can act on: OK, INVALID_ARGUMENT,
//     NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, UNAUTHENTICATED,
//     RESOURCE_EXHAUSTED, FAILED_PRECONDITION, OUT_OF_RANGE (never
//     UNKNOWN, INTERNAL, UNIMPLEMENTED, UNAVAILABLE, DATA_LOSS, nor a hang
//     ending in DEADLINE_EXCEEDED); CANCELLED only for streams the fuzzer
//     cancels itself;
//   - bytes that do not parse as the request message: INVALID_ARGUMENT;
//   - a call without a valid token (none, expired, forged, garbage, not
//     Bearer) to an authenticated method: UNAUTHENTICATED;
//   - a call naming carol's conversation by anyone but carol is never OK
//     and gets exactly the code and message of the same call naming a
//     conversation that does not exist;
//   - stream frames: Error frames carry an acceptable code, acks a seq;
//   - the seeded conversations' logs stay gap-free and are written only by
//     their members.

namespace im::fuzz {

void FuzzRpcInput(const std::string& service_full_name, const uint8_t* data,
                  size_t size);
// One method only: byte 0 is the Credential, the rest the payload.
void FuzzMethodInput(const std::string& service_full_name,
                     const std::string& method_name, const uint8_t* data,
                     size_t size);
// The index FuzzRpcInput's byte 0 takes for `method_name`; -1 if unknown.
int MethodIndex(const std::string& service_full_name,
                const std::string& method_name);

// Builds one input in the layout above (for corpus seeds).
std::string EncodeRpcInput(uint8_t method_index, uint8_t credential,
                           const std::string& payload);
// Frames for a client-streaming method's payload.
std::string EncodeFrame(const std::string& frame);

}  // namespace im::fuzz

#endif  // IM_TESTS_FUZZ_RPC_FUZZING_H_
