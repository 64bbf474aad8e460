#include "services/common/access_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace im {
namespace {

constexpr absl::string_view kPrefix = "v1.";
// key id, role, user id, session id, issued (us), expires (us).
constexpr size_t kPayloadSize = 1 + 1 + 8 + 8 + 8 + 8;
constexpr size_t kMinSecretSize = 32;

void PutU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xFF));
  }
}

uint64_t GetU64(absl::string_view in, size_t offset) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<uint8_t>(in[offset + i]);
  }
  return v;
}

std::string Mac(absl::string_view secret, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
       &out_len);
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("access token ", why));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenCodec>> TokenCodec::Create(
    std::vector<TokenKey> keys) {
  if (keys.empty()) return absl::InvalidArgumentError("no token keys");
  std::set<uint8_t> ids;
  for (const TokenKey& key : keys) {
    if (key.id == 0) return absl::InvalidArgumentError("token key id 0");
    if (!ids.insert(key.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate token key id ", key.id));
    }
    if (key.secret.size() < kMinSecretSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token key ", key.id, " is shorter than ", kMinSecretSize,
          " bytes"));
    }
  }
  return std::unique_ptr<TokenCodec>(new TokenCodec(std::move(keys)));
}

absl::StatusOr<std::unique_ptr<TokenCodec>> TokenCodec::FromKeyFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<TokenKey> keys;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(text, ' ', absl::SkipEmpty());
    int id = 0;
    TokenKey key;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &id) || id < 1 ||
        id > 255 || !absl::Base64Unescape(parts[1], &key.secret)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": expected \"<id> <base64>\""));
    }
    key.id = static_cast<uint8_t>(id);
    keys.push_back(std::move(key));
  }
  return Create(std::move(keys));
}

std::string TokenCodec::GenerateKeyFile(uint8_t key_id) {
  unsigned char secret[32];
  RAND_bytes(secret, sizeof(secret));
  return absl::StrCat(
      key_id, " ",
      absl::Base64Escape(absl::string_view(
          reinterpret_cast<const char*>(secret), sizeof(secret))),
      "\n");
}

const TokenKey* TokenCodec::FindKey(uint8_t id) const {
  for (const TokenKey& key : keys_) {
    if (key.id == id) return &key;
  }
  return nullptr;
}

std::string TokenCodec::Mint(const Caller& caller,
                             absl::Time issued_at) const {
  const TokenKey& key = keys_.front();
  std::string payload;
  payload.reserve(kPayloadSize);
  payload.push_back(static_cast<char>(key.id));
  payload.push_back(static_cast<char>(caller.role));
  PutU64(&payload, caller.user_id);
  PutU64(&payload, caller.session_id);
  PutU64(&payload, static_cast<uint64_t>(absl::ToUnixMicros(issued_at)));
  PutU64(&payload,
         static_cast<uint64_t>(absl::ToUnixMicros(caller.expires_at)));
  std::string signed_part =
      absl::StrCat(kPrefix, absl::WebSafeBase64Escape(payload));
  std::string mac = Mac(key.secret, signed_part);
  return absl::StrCat(signed_part, ".", absl::WebSafeBase64Escape(mac));
}

absl::StatusOr<Caller> TokenCodec::Verify(absl::string_view token,
                                          absl::Time now) const {
  if (!absl::ConsumePrefix(&token, kPrefix)) {
    return Unauthenticated("is malformed");
  }
  const size_t dot = token.find('.');
  if (dot == absl::string_view::npos) return Unauthenticated("is malformed");
  std::string payload;
  std::string mac;
  if (!absl::WebSafeBase64Unescape(token.substr(0, dot), &payload) ||
      !absl::WebSafeBase64Unescape(token.substr(dot + 1), &mac) ||
      payload.size() != kPayloadSize) {
    return Unauthenticated("is malformed");
  }
  const TokenKey* key = FindKey(static_cast<uint8_t>(payload[0]));
  if (key == nullptr) return Unauthenticated("was signed by an unknown key");
  const std::string expected =
      Mac(key->secret, absl::StrCat(kPrefix, token.substr(0, dot)));
  if (mac.size() != expected.size() ||
      CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) != 0) {
    return Unauthenticated("signature is invalid");
  }
  Caller caller;
  const int role = static_cast<uint8_t>(payload[1]);
  if (!auth::v1::Role_IsValid(role) || role == auth::v1::ROLE_UNSPECIFIED) {
    return Unauthenticated("has an invalid role");
  }
  caller.role = static_cast<auth::v1::Role>(role);
  caller.user_id = GetU64(payload, 2);
  caller.session_id = GetU64(payload, 10);
  caller.expires_at =
      absl::FromUnixMicros(static_cast<int64_t>(GetU64(payload, 26)));
  if (caller.expires_at <= now) return Unauthenticated("has expired");
  return caller;
}

}  // namespace im
