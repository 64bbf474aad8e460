#include "tests/cluster/service_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace im::cluster_testing {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::unique_ptr<ServiceProcess> ServiceProcess::StartOrFail(
    const std::string& name, const std::string& binary,
    const std::vector<std::string>& args, absl::Duration timeout) {
  return Spawn(name, absl::StrCat(EnvOr("TEST_SRCDIR", "."), "/im/", binary),
               args, " listening on ", /*read_address=*/true, timeout);
}

std::unique_ptr<ServiceProcess> ServiceProcess::StartProgramOrFail(
    const std::string& name, const std::string& path,
    const std::vector<std::string>& args, const std::string& ready_text,
    absl::Duration timeout) {
  return Spawn(name, path, args, ready_text, /*read_address=*/false, timeout);
}

std::unique_ptr<ServiceProcess> ServiceProcess::Spawn(
    const std::string& name, const std::string& path,
    const std::vector<std::string>& args, const std::string& ready_text,
    bool read_address, absl::Duration timeout) {
  // One log per test and process: start-up reads it for this start's
  // address, never an earlier one's.
  const ::testing::TestInfo* test =
      ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string log_path = absl::StrCat(
      EnvOr("TEST_UNDECLARED_OUTPUTS_DIR", EnvOr("TEST_TMPDIR", "/tmp")), "/",
      test != nullptr
          ? absl::StrCat(test->test_suite_name(), ".", test->name(), ".")
          : "",
      name, ".log");
  // Everything the child needs is made before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> argv_strings = {path};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int log_fd =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    ADD_FAILURE() << "cannot open " << log_path;
    return nullptr;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  if (pid < 0) {
    ADD_FAILURE() << "fork failed for " << name;
    return nullptr;
  }
  auto process =
      std::unique_ptr<ServiceProcess>(new ServiceProcess(name, pid, log_path));
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::string log = ReadFile(log_path);
    const size_t at = log.find(ready_text);
    if (at != std::string::npos && !read_address) return process;
    if (at != std::string::npos) {
      const size_t begin = at + ready_text.size();
      const size_t end = log.find(' ', begin);
      if (end != std::string::npos) {
        process->address_ = log.substr(begin, end - begin);
        return process;
      }
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      process->pid_ = 0;
      ADD_FAILURE() << name << " exited during start-up:\n" << log;
      return nullptr;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  ADD_FAILURE() << name << " was not ready within " << timeout << ":\n"
                << ReadFile(log_path);
  return nullptr;
}

ServiceProcess::~ServiceProcess() { Kill(); }

void ServiceProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = 0;
}

bool ServiceProcess::Terminate(absl::Duration timeout) {
  if (pid_ <= 0) return false;
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  Kill();
  return false;
}

int ServiceProcess::CountLogLines(const std::string& text) const {
  std::ifstream in(log_path_);
  int count = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find(text) != std::string::npos) ++count;
  }
  return count;
}

}  // namespace im::cluster_testing
