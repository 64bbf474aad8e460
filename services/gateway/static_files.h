#ifndef IM_SERVICES_GATEWAY_STATIC_FILES_H_
#define IM_SERVICES_GATEWAY_STATIC_FILES_H_

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace im::gateway {

// A file of the web root chosen for a request path.
struct StaticFile {
  std::filesystem::path path;
  std::string content_type;
};

// Maps request paths to files under one directory (the built web page).
// Paths that would leave the directory (.., symlinks out, encoded
// separators) are refused. Thread-safe (immutable).
class StaticFiles {
 public:
  // NOT_FOUND unless `root` is an existing directory.
  static absl::StatusOr<std::unique_ptr<StaticFiles>> Create(
      const std::string& root);

  // The file for `target` (path plus optional query). "/" and directories
  // map to their index.html. NOT_FOUND for missing files and for paths that
  // are malformed or leave the root.
  absl::StatusOr<StaticFile> Resolve(absl::string_view target) const;

  // Content-Type for a file name by its extension.
  static std::string ContentTypeFor(const std::filesystem::path& path);

 private:
  explicit StaticFiles(std::filesystem::path root) : root_(std::move(root)) {}

  const std::filesystem::path root_;  // canonical
};

}  // namespace im::gateway

#endif  // IM_SERVICES_GATEWAY_STATIC_FILES_H_
