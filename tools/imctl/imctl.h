#ifndef IM_TOOLS_IMCTL_IMCTL_H_
#define IM_TOOLS_IMCTL_IMCTL_H_

#include <atomic>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace im::imctl {

// What imctl reads from its surroundings (main fills it from the process;
// tests from fixtures).
struct Environment {
  // Variable lookup (getenv); "" when unset.
  std::function<std::string(const std::string&)> getenv;
  // Where passwords come from when not in IMCTL_PASSWORD (the terminal, or
  // stdin with --password-stdin).
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  // Set by a signal handler: long-running commands (tail) stop.
  const std::atomic<bool>* interrupted = nullptr;
};

// Runs one imctl command line (without the program name). Exit status: 0
// success, 1 the operation failed (the message names the gRPC code), 2 bad
// usage.
int RunImctl(const std::vector<std::string>& args, const Environment& env);

}  // namespace im::imctl

#endif  // IM_TOOLS_IMCTL_IMCTL_H_
