#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "storage/column_limits.h"
#include "storage/fake/fake_state.h"

namespace im::storage {
namespace {

absl::Status UserNotFound() { return absl::NotFoundError("user not found"); }

class FakeUserStore : public UserStore {
 public:
  explicit FakeUserStore(FakeState* state) : state_(state) {}

  absl::StatusOr<UserRecord> CreateUser(const NewUser& user) override {
    if (auto s = ValidateNewUser(user); !s.ok()) return s;
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    if (state_->user_by_norm.count(user.username_norm) > 0) {
      return absl::AlreadyExistsError("username taken");
    }
    UserRecord record;
    record.id = state_->next_user_id++;
    record.username = user.username;
    record.username_norm = user.username_norm;
    record.display_name = user.display_name;
    record.password_hash = user.password_hash;
    record.kind = UserKind::kPerson;
    record.is_admin = user.is_admin;
    record.created_at = StoredTime(user.created_at);
    state_->user_by_norm[record.username_norm] = record.id;
    state_->users[record.id] = record;
    return record;
  }

  absl::StatusOr<UserRecord> GetUserByUsername(
      const std::string& username_norm) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->user_by_norm.find(username_norm);
    if (it == state_->user_by_norm.end()) return UserNotFound();
    return state_->users.at(it->second);
  }

  absl::StatusOr<UserRecord> GetUser(uint64_t user_id) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->users.find(user_id);
    if (it == state_->users.end()) return UserNotFound();
    return it->second;
  }

  absl::StatusOr<std::vector<UserRecord>> GetUsers(
      absl::Span<const uint64_t> user_ids) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::vector<UserRecord> result;
    for (uint64_t id : std::set<uint64_t>(user_ids.begin(), user_ids.end())) {
      auto it = state_->users.find(id);
      if (it != state_->users.end()) result.push_back(it->second);
    }
    return result;
  }

  absl::StatusOr<std::vector<UserRecord>> GetUsersByUsername(
      absl::Span<const std::string> usernames_norm) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::set<uint64_t> ids;
    for (const std::string& norm : usernames_norm) {
      auto it = state_->user_by_norm.find(norm);
      if (it != state_->user_by_norm.end()) ids.insert(it->second);
    }
    std::vector<UserRecord> result;
    for (uint64_t id : ids) result.push_back(state_->users.at(id));
    return result;
  }

  absl::Status SetAdmin(uint64_t user_id, bool is_admin) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->users.find(user_id);
    if (it == state_->users.end()) return UserNotFound();
    it->second.is_admin = is_admin;
    return absl::OkStatus();
  }

  absl::Status SetStatusText(uint64_t user_id,
                             const std::string& text) override {
    if (auto s = ValidateStatusText(text); !s.ok()) return s;
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->users.find(user_id);
    if (it == state_->users.end()) return UserNotFound();
    it->second.status_text = text;
    return absl::OkStatus();
  }

  absl::Status UpdateLastSeen(
      absl::Span<const std::pair<uint64_t, absl::Time>> last_seen) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    for (const auto& [id, time] : last_seen) {
      auto it = state_->users.find(id);
      if (it == state_->users.end()) continue;
      const absl::Time t = StoredTime(time);
      std::optional<absl::Time>& stored = it->second.last_seen_at;
      if (!stored.has_value() || t > *stored) stored = t;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<ServiceAccountRecord> CreateServiceAccount(
      const NewServiceAccount& account) override {
    if (auto s = ValidateNewServiceAccount(account); !s.ok()) return s;
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    if (state_->user_by_norm.count(account.name_norm) > 0) {
      return absl::AlreadyExistsError("username taken");
    }
    if (state_->service_account_by_key.count(account.api_key_hash) > 0) {
      return absl::AlreadyExistsError("api key hash taken");
    }
    UserRecord user;
    user.id = state_->next_user_id++;
    user.username = account.name;
    user.username_norm = account.name_norm;
    user.display_name = account.name;
    user.kind = UserKind::kService;
    user.created_at = StoredTime(account.created_at);
    state_->user_by_norm[user.username_norm] = user.id;
    state_->users[user.id] = user;

    FakeServiceAccountRow row;
    row.record.user_id = user.id;
    row.record.name = account.name;
    row.record.description = account.description;
    row.record.key_prefix = account.key_prefix;
    row.record.created_by = account.created_by;
    row.record.created_at = user.created_at;
    row.api_key_hash = account.api_key_hash;
    state_->service_account_by_key[row.api_key_hash] = user.id;
    state_->service_accounts[user.id] = row;
    return row.record;
  }

  absl::StatusOr<std::vector<ServiceAccountRecord>> ListServiceAccounts()
      override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::vector<ServiceAccountRecord> result;
    for (const auto& [id, row] : state_->service_accounts) {
      result.push_back(row.record);
    }
    return result;
  }

  absl::StatusOr<ServiceAccountRecord> FindServiceAccountByKeyHash(
      const std::string& api_key_hash) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->service_account_by_key.find(api_key_hash);
    if (it == state_->service_account_by_key.end()) {
      return absl::NotFoundError("service account not found");
    }
    return state_->service_accounts.at(it->second).record;
  }

  absl::StatusOr<ServiceAccountRecord> RevokeServiceAccount(
      uint64_t user_id, absl::Time now) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->service_accounts.find(user_id);
    if (it == state_->service_accounts.end()) {
      return absl::NotFoundError("service account not found");
    }
    ServiceAccountRecord& record = it->second.record;
    if (!record.revoked_at.has_value()) record.revoked_at = StoredTime(now);
    return record;
  }

 private:
  FakeState* const state_;
};

}  // namespace

std::unique_ptr<UserStore> NewFakeUserStore(FakeState* state) {
  return std::make_unique<FakeUserStore>(state);
}

}  // namespace im::storage
