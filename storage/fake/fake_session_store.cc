#include <algorithm>

#include "storage/column_limits.h"
#include "storage/fake/fake_state.h"

namespace im::storage {
namespace {

bool IsLive(const SessionRecord& session, absl::Time now) {
  return !session.revoked_at.has_value() && session.expires_at > now;
}

RevokedSessionRecord RevokedView(const SessionRecord& session) {
  return RevokedSessionRecord{session.id, session.user_id,
                              *session.revoked_at};
}

void Revoke(SessionRecord& session, RevokeReason reason, absl::Time now) {
  session.revoked_at = now;
  session.revoke_reason = reason;
}

class FakeSessionStore : public SessionStore {
 public:
  explicit FakeSessionStore(FakeState* state) : state_(state) {}

  absl::StatusOr<SessionRecord> CreateSession(
      const NewSession& session) override {
    if (auto s = ValidateNewSession(session); !s.ok()) return s;
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    if (state_->users.count(session.user_id) == 0) {
      return absl::NotFoundError("user not found");
    }
    if (!session.refresh_token_hash.empty() &&
        state_->refresh_tokens.count(session.refresh_token_hash) > 0) {
      return absl::AlreadyExistsError("refresh token hash already stored");
    }
    SessionRecord record;
    record.id = state_->next_session_id++;
    record.user_id = session.user_id;
    record.device_name = session.device_name;
    record.device_kind = session.device_kind;
    record.created_at = StoredTime(session.now);
    record.last_used_at = record.created_at;
    record.expires_at = StoredTime(session.expires_at);
    state_->sessions[record.id] = record;
    if (!session.refresh_token_hash.empty()) {
      state_->refresh_tokens[session.refresh_token_hash] =
          FakeRefreshTokenRow{record.id, record.expires_at, std::nullopt};
    }
    return record;
  }

  absl::StatusOr<SessionRecord> GetSession(uint64_t session_id) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->sessions.find(session_id);
    if (it == state_->sessions.end()) {
      return absl::NotFoundError("session not found");
    }
    return it->second;
  }

  absl::StatusOr<RotateResult> RotateRefreshToken(const std::string& old_hash,
                                                  const std::string& new_hash,
                                                  absl::Time new_expires_at,
                                                  absl::Time now) override {
    if (auto s = ValidateTokenHash("new_hash", new_hash); !s.ok()) return s;
    now = StoredTime(now);
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    RotateResult result;
    auto token = state_->refresh_tokens.find(old_hash);
    if (token == state_->refresh_tokens.end()) {
      result.outcome = RotateOutcome::kUnknown;
      return result;
    }
    SessionRecord& session = state_->sessions.at(token->second.session_id);
    if (session.revoked_at.has_value()) {
      result.outcome = RotateOutcome::kRevoked;
    } else if (token->second.used_at.has_value()) {
      Revoke(session, RevokeReason::kRefreshReuse, now);
      result.outcome = RotateOutcome::kReuseRevoked;
    } else if (token->second.expires_at <= now || session.expires_at <= now) {
      result.outcome = RotateOutcome::kExpired;
    } else {
      if (state_->refresh_tokens.count(new_hash) > 0) {
        return absl::AlreadyExistsError("refresh token hash already stored");
      }
      const absl::Time expires_at = StoredTime(new_expires_at);
      token->second.used_at = now;
      state_->refresh_tokens[new_hash] =
          FakeRefreshTokenRow{session.id, expires_at, std::nullopt};
      session.expires_at = expires_at;
      session.last_used_at = now;
      result.outcome = RotateOutcome::kRotated;
    }
    result.session = session;
    return result;
  }

  absl::StatusOr<RevokedSessionRecord> RevokeSession(uint64_t user_id,
                                                     uint64_t session_id,
                                                     RevokeReason reason,
                                                     absl::Time now) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->sessions.find(session_id);
    if (it == state_->sessions.end() || it->second.user_id != user_id) {
      return absl::NotFoundError("session not found");
    }
    if (!it->second.revoked_at.has_value()) {
      Revoke(it->second, reason, StoredTime(now));
    }
    return RevokedView(it->second);
  }

  absl::StatusOr<std::vector<RevokedSessionRecord>> RevokeAllSessions(
      uint64_t user_id, RevokeReason reason, absl::Time now) override {
    now = StoredTime(now);
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::vector<RevokedSessionRecord> revoked;
    for (auto& [id, session] : state_->sessions) {
      if (session.user_id != user_id || !IsLive(session, now)) continue;
      Revoke(session, reason, now);
      revoked.push_back(RevokedView(session));
    }
    return revoked;
  }

  absl::StatusOr<std::vector<SessionRecord>> ListLiveSessions(
      uint64_t user_id, absl::Time now) override {
    now = StoredTime(now);
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::vector<SessionRecord> live;
    for (const auto& [id, session] : state_->sessions) {
      if (session.user_id == user_id && IsLive(session, now)) {
        live.push_back(session);
      }
    }
    std::sort(live.begin(), live.end(),
              [](const SessionRecord& a, const SessionRecord& b) {
                return std::tie(a.created_at, a.id) >
                       std::tie(b.created_at, b.id);
              });
    return live;
  }

  absl::StatusOr<std::vector<RevokedSessionRecord>> ListRevokedSince(
      absl::Time since) override {
    since = StoredTime(since);
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::vector<RevokedSessionRecord> revoked;
    for (const auto& [id, session] : state_->sessions) {
      if (session.revoked_at.has_value() && *session.revoked_at >= since) {
        revoked.push_back(RevokedView(session));
      }
    }
    std::sort(revoked.begin(), revoked.end(),
              [](const RevokedSessionRecord& a, const RevokedSessionRecord& b) {
                return std::tie(a.revoked_at, a.session_id) <
                       std::tie(b.revoked_at, b.session_id);
              });
    return revoked;
  }

 private:
  FakeState* const state_;
};

}  // namespace

std::unique_ptr<SessionStore> NewFakeSessionStore(FakeState* state) {
  return std::make_unique<FakeSessionStore>(state);
}

}  // namespace im::storage
