#include "services/gateway/static_files.h"

#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace im::gateway {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX; false on malformed escapes or a decoded NUL.
bool PercentDecode(absl::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int high = HexValue(in[i + 1]);
    const int low = HexValue(in[i + 2]);
    if (high < 0 || low < 0) return false;
    const char decoded = static_cast<char>(high * 16 + low);
    if (decoded == '\0') return false;
    out->push_back(decoded);
    i += 2;
  }
  return true;
}

bool IsWithin(const std::filesystem::path& root,
              const std::filesystem::path& candidate) {
  auto root_it = root.begin();
  auto it = candidate.begin();
  for (; root_it != root.end(); ++root_it, ++it) {
    if (it == candidate.end() || *it != *root_it) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StaticFiles>> StaticFiles::Create(
    const std::string& root) {
  std::error_code error;
  std::filesystem::path canonical = std::filesystem::canonical(root, error);
  if (error || !std::filesystem::is_directory(canonical, error)) {
    return absl::NotFoundError(
        absl::StrCat("web root ", root, " is not a directory"));
  }
  return std::unique_ptr<StaticFiles>(new StaticFiles(std::move(canonical)));
}

absl::StatusOr<StaticFile> StaticFiles::Resolve(
    absl::string_view target) const {
  const absl::Status not_found = absl::NotFoundError("not found");
  absl::string_view raw_path = target.substr(0, target.find_first_of("?#"));
  if (raw_path.empty() || raw_path[0] != '/') return not_found;
  std::string path;
  if (!PercentDecode(raw_path, &path)) return not_found;
  if (absl::StrContains(path, '\\')) return not_found;

  std::filesystem::path relative;
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    if (segment.empty() || segment == ".") continue;
    // No parent steps and no hidden files (.git, .env, ...).
    if (segment[0] == '.') return not_found;
    relative /= std::string(segment);
  }

  std::error_code error;
  std::filesystem::path file = root_ / relative;
  if (std::filesystem::is_directory(file, error)) file /= "index.html";
  // Resolve symlinks and check the result is still inside the root.
  std::filesystem::path canonical = std::filesystem::canonical(file, error);
  if (error || !IsWithin(root_, canonical) ||
      !std::filesystem::is_regular_file(canonical, error)) {
    return not_found;
  }
  return StaticFile{canonical, ContentTypeFor(canonical)};
}

std::string StaticFiles::ContentTypeFor(const std::filesystem::path& path) {
  const std::string ext = absl::AsciiStrToLower(path.extension().string());
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".gif") return "image/gif";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".webp") return "image/webp";
  if (ext == ".woff2") return "font/woff2";
  if (ext == ".woff") return "font/woff";
  if (ext == ".wasm") return "application/wasm";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace im::gateway
