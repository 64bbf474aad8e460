// imctl: the command-line client (see `imctl --help` and README.md "CLI").

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "tools/imctl/imctl.h"

namespace {

std::atomic<bool> interrupted{false};

void OnSignal(int) { interrupted.store(true); }

}  // namespace

int main(int argc, char** argv) {
  static_assert(std::atomic<bool>::is_always_lock_free,
                "the signal handler needs a lock-free flag");
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::vector<std::string> args(argv + 1, argv + argc);
  im::imctl::Environment env;
  env.getenv = [](const std::string& name) {
    const char* value = std::getenv(name.c_str());
    return value == nullptr ? std::string() : std::string(value);
  };
  env.in = &std::cin;
  env.out = &std::cout;
  env.err = &std::cerr;
  env.interrupted = &interrupted;
  return im::imctl::RunImctl(args, env);
}
