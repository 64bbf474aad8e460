#include "tools/imctl/session_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/text_format.h"

namespace im::imctl {
namespace {

absl::Status ErrnoError(const std::string& what) {
  return absl::PermissionDeniedError(absl::StrCat(what, ": ", strerror(errno)));
}

absl::StatusOr<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return absl::NotFoundError(path + " does not exist");
    return ErrnoError("cannot read " + path);
  }
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace

std::string DefaultStateDirectory(const std::string& xdg_config_home,
                                  const std::string& home) {
  if (!xdg_config_home.empty()) return xdg_config_home + "/imctl";
  if (!home.empty()) return home + "/.config/imctl";
  return "";
}

absl::Status StateFiles::EnsureDirectory() const {
  if (directory_.empty()) {
    return absl::FailedPreconditionError(
        "no state directory: set HOME or XDG_CONFIG_HOME (or --state_dir)");
  }
  // Parents as needed; the last one private.
  std::string path;
  for (absl::string_view part : absl::StrSplit(directory_, '/')) {
    if (part.empty()) {
      if (path.empty()) path = "/";
      continue;
    }
    if (!path.empty() && path.back() != '/') path += "/";
    path += std::string(part);
    if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError("cannot create " + path);
    }
  }
  chmod(directory_.c_str(), 0700);
  return absl::OkStatus();
}

absl::Status StateFiles::WritePrivate(const std::string& path,
                                      const std::string& content) const {
  if (absl::Status status = EnsureDirectory(); !status.ok()) return status;
  const std::string temp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return ErrnoError("cannot write " + temp);
  fchmod(fd, 0600);
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = write(fd, content.data() + written,
                            content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      unlink(temp.c_str());
      return ErrnoError("cannot write " + temp);
    }
    written += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    unlink(temp.c_str());
    return ErrnoError("cannot write " + temp);
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    unlink(temp.c_str());
    return ErrnoError("cannot replace " + path);
  }
  return absl::OkStatus();
}

absl::StatusOr<auth::v1::TokenPair> StateFiles::LoadSession() const {
  absl::StatusOr<std::string> content = ReadAll(session_path());
  if (!content.ok()) {
    if (absl::IsNotFound(content.status())) {
      return absl::NotFoundError("not logged in (run: imctl login <username>)");
    }
    return content.status();
  }
  auth::v1::TokenPair tokens;
  if (!google::protobuf::TextFormat::ParseFromString(*content, &tokens) ||
      tokens.access_token().empty()) {
    return absl::DataLossError(session_path() +
                               " is damaged; log in again");
  }
  return tokens;
}

absl::Status StateFiles::SaveSession(const auth::v1::TokenPair& tokens) const {
  std::string text;
  google::protobuf::TextFormat::PrintToString(tokens, &text);
  return WritePrivate(session_path(),
                      "# imctl session: private credentials, keep 0600\n" + text);
}

absl::Status StateFiles::RemoveSession() const {
  if (unlink(session_path().c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("cannot remove " + session_path());
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_map<uint64_t, uint64_t>>
StateFiles::LoadCursors() const {
  absl::flat_hash_map<uint64_t, uint64_t> cursors;
  absl::StatusOr<std::string> content = ReadAll(cursors_path());
  if (!content.ok()) {
    if (absl::IsNotFound(content.status())) return cursors;
    return content.status();
  }
  for (absl::string_view line : absl::StrSplit(*content, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t conversation = 0, seq = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &conversation) ||
        !absl::SimpleAtoi(parts[1], &seq)) {
      return absl::DataLossError(
          absl::StrCat(cursors_path(), ": bad line \"", line, "\""));
    }
    cursors[conversation] = seq;
  }
  return cursors;
}

absl::Status StateFiles::SaveCursors(
    const absl::flat_hash_map<uint64_t, uint64_t>& cursors) const {
  std::vector<std::pair<uint64_t, uint64_t>> sorted(cursors.begin(),
                                                    cursors.end());
  std::sort(sorted.begin(), sorted.end());
  std::string text = "# conversation last-seq-seen\n";
  for (const auto& [conversation, seq] : sorted) {
    absl::StrAppend(&text, conversation, " ", seq, "\n");
  }
  return WritePrivate(cursors_path(), text);
}

StateFiles::Lock::~Lock() {
  if (fd_ >= 0) {
    flock(fd_, LOCK_UN);
    close(fd_);
  }
}

absl::StatusOr<StateFiles::Lock> StateFiles::Acquire() const {
  if (absl::Status status = EnsureDirectory(); !status.ok()) return status;
  const std::string path = directory_ + "/lock";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT, 0600);
  if (fd < 0) return ErrnoError("cannot open " + path);
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      close(fd);
      return ErrnoError("cannot lock " + path);
    }
  }
  return Lock(fd);
}

}  // namespace im::imctl
