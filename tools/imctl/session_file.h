#ifndef IM_TOOLS_IMCTL_SESSION_FILE_H_
#define IM_TOOLS_IMCTL_SESSION_FILE_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "im/auth/v1/auth.pb.h"

namespace im::imctl {

// Where imctl keeps its state: $XDG_CONFIG_HOME/imctl, else
// $HOME/.config/imctl. Empty when neither variable is set.
std::string DefaultStateDirectory(const std::string& xdg_config_home,
                                  const std::string& home);

// imctl's files in one directory (created 0700): `session` holds the
// signed-in session's tokens (0600; the refresh token is a credential),
// `cursors` the last seq `tail` printed per conversation, and `lock`
// serializes imctl processes that may renew the tokens (a refresh token
// works once: two processes refreshing the same one would revoke the
// session).
class StateFiles {
 public:
  explicit StateFiles(std::string directory)
      : directory_(std::move(directory)) {}

  const std::string& directory() const { return directory_; }
  std::string session_path() const { return directory_ + "/session"; }
  std::string cursors_path() const { return directory_ + "/cursors"; }

  // NOT_FOUND when nobody is logged in.
  absl::StatusOr<auth::v1::TokenPair> LoadSession() const;
  // Atomically replaces the session file (written 0600, then renamed).
  absl::Status SaveSession(const auth::v1::TokenPair& tokens) const;
  absl::Status RemoveSession() const;

  // Empty when there is no cursor file.
  absl::StatusOr<absl::flat_hash_map<uint64_t, uint64_t>> LoadCursors() const;
  absl::Status SaveCursors(
      const absl::flat_hash_map<uint64_t, uint64_t>& cursors) const;

  // An exclusive lock on the directory's lock file, held while alive.
  class Lock {
   public:
    Lock(Lock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    Lock& operator=(Lock&&) = delete;
    ~Lock();

   private:
    friend class StateFiles;
    explicit Lock(int fd) : fd_(fd) {}
    int fd_;
  };
  absl::StatusOr<Lock> Acquire() const;

 private:
  absl::Status EnsureDirectory() const;
  absl::Status WritePrivate(const std::string& path,
                            const std::string& content) const;

  const std::string directory_;
};

}  // namespace im::imctl

#endif  // IM_TOOLS_IMCTL_SESSION_FILE_H_
