#ifndef IM_SERVICES_AUTH_PASSWORD_HASHER_H_
#define IM_SERVICES_AUTH_PASSWORD_HASHER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace im::auth {

// Argon2id password hashing (libsodium crypto_pwhash_str, parallelism 1).
// Slow by design: call it only from a bounded worker pool, never from a
// gRPC callback thread. Thread-safe (immutable after Create).
class PasswordHasher {
 public:
  struct Options {
    // Passes over memory (argon2 t).
    uint64_t opslimit = 3;
    // Memory per hash in bytes (argon2 m). OWASP's minimum is 19 MiB with
    // t=2; the default (32 MiB, t=3) is stronger and costs about 30 ms here.
    size_t memlimit_bytes = size_t{32} << 20;
  };

  // The weakest setting main() accepts (OWASP password storage cheat sheet:
  // argon2id m=19 MiB, t=2, p=1).
  static constexpr uint64_t kOwaspMinOpslimit = 2;
  static constexpr size_t kOwaspMinMemlimitBytes = size_t{19} << 20;

  // INVALID_ARGUMENT for limits libsodium refuses; INTERNAL if libsodium
  // cannot initialise. Computes one hash to have a dummy for Verify.
  static absl::StatusOr<std::unique_ptr<PasswordHasher>> Create(
      const Options& options);

  // An encoded "$argon2id$v=19$m=...,t=...,p=1$salt$hash" string with a
  // fresh random salt. RESOURCE_EXHAUSTED if the memory cannot be had.
  absl::StatusOr<std::string> Hash(absl::string_view password) const;

  // True if `password` matches `encoded_hash`. An empty or malformed hash
  // is checked against a dummy hash of the same cost instead, so a missing
  // account takes as long as a wrong password, and answers false.
  bool Verify(absl::string_view encoded_hash, absl::string_view password) const;

  // True if `encoded_hash` was made with other parameters than these.
  bool NeedsRehash(absl::string_view encoded_hash) const;

  const Options& options() const { return options_; }

 private:
  PasswordHasher(const Options& options, std::string dummy_hash)
      : options_(options), dummy_hash_(std::move(dummy_hash)) {}

  const Options options_;
  // A hash of a random password at the configured cost.
  const std::string dummy_hash_;
};

}  // namespace im::auth

#endif  // IM_SERVICES_AUTH_PASSWORD_HASHER_H_
