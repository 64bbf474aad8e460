-- Initial schema. Times are microseconds since the Unix epoch (UTC) in
-- BIGINT columns named *_us: exact, zone-free and cheap to compare.
-- utf8mb4 everywhere; identifiers that must compare byte-exactly use
-- utf8mb4_bin.

CREATE TABLE users (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  -- As registered; unique through username_norm (lower-cased).
  username VARCHAR(64) NOT NULL,
  username_norm VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  display_name VARCHAR(128) NOT NULL,
  -- argon2id encoded hash (libsodium crypto_pwhash_str); NULL for service
  -- accounts, which authenticate with an API key.
  password_hash VARCHAR(255) NULL,
  -- 1 = person, 2 = service account.
  kind TINYINT UNSIGNED NOT NULL DEFAULT 1,
  is_admin TINYINT(1) NOT NULL DEFAULT 0,
  status_text VARCHAR(255) NOT NULL DEFAULT '',
  created_at_us BIGINT NOT NULL,
  last_seen_at_us BIGINT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_users_username_norm (username_norm)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per device session.
CREATE TABLE sessions (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id BIGINT UNSIGNED NOT NULL,
  device_name VARCHAR(128) NOT NULL DEFAULT '',
  device_kind TINYINT UNSIGNED NOT NULL DEFAULT 0,
  created_at_us BIGINT NOT NULL,
  last_used_at_us BIGINT NOT NULL,
  -- Sessions end when their refresh chain expires or they are revoked.
  expires_at_us BIGINT NOT NULL,
  revoked_at_us BIGINT NULL,
  -- Why: 1 logout, 2 logout-all, 3 refresh token reuse, 4 service account
  -- revoked, 5 admin.
  revoke_reason TINYINT UNSIGNED NULL,
  PRIMARY KEY (id),
  KEY ix_sessions_user (user_id, revoked_at_us),
  KEY ix_sessions_revoked (revoked_at_us),
  CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Refresh tokens, stored as SHA-256 of the secret. Each is single-use:
-- used_at_us is set when it is exchanged; presenting it again revokes the
-- session.
CREATE TABLE refresh_tokens (
  token_hash BINARY(32) NOT NULL,
  session_id BIGINT UNSIGNED NOT NULL,
  created_at_us BIGINT NOT NULL,
  expires_at_us BIGINT NOT NULL,
  used_at_us BIGINT NULL,
  PRIMARY KEY (token_hash),
  KEY ix_refresh_tokens_session (session_id),
  CONSTRAINT fk_refresh_tokens_session FOREIGN KEY (session_id) REFERENCES sessions (id)
) ENGINE=InnoDB;

-- Backend identities. The account itself is a users row (kind = 2), so it
-- can be a member of conversations and appear as a sender.
CREATE TABLE service_accounts (
  user_id BIGINT UNSIGNED NOT NULL,
  description VARCHAR(512) NOT NULL DEFAULT '',
  -- SHA-256 of the key's secret part (keys are 256-bit random, so a fast
  -- hash is enough); key_prefix is shown to tell keys apart.
  api_key_hash BINARY(32) NOT NULL,
  key_prefix VARCHAR(32) NOT NULL,
  created_by BIGINT UNSIGNED NOT NULL,
  created_at_us BIGINT NOT NULL,
  revoked_at_us BIGINT NULL,
  PRIMARY KEY (user_id),
  UNIQUE KEY uk_service_accounts_key (api_key_hash),
  CONSTRAINT fk_service_accounts_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE conversations (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  -- 1 = direct, 2 = group.
  kind TINYINT UNSIGNED NOT NULL,
  title VARCHAR(255) NOT NULL DEFAULT '',
  -- Direct conversations: "<smaller user id>:<larger user id>", unique, so
  -- a pair has at most one. NULL for groups.
  direct_key VARCHAR(48) CHARACTER SET ascii COLLATE ascii_bin NULL,
  created_by BIGINT UNSIGNED NOT NULL,
  created_at_us BIGINT NOT NULL,
  -- The seq allocator: the newest entry's seq, bumped in the transaction
  -- that inserts the entry (rows are locked FOR UPDATE first).
  last_seq BIGINT UNSIGNED NOT NULL DEFAULT 0,
  last_activity_at_us BIGINT NOT NULL,
  member_count INT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY uk_conversations_direct (direct_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Membership history of each (user, conversation): a member sees entries
-- from joined_seq up to left_seq (inclusive) when set.
CREATE TABLE memberships (
  user_id BIGINT UNSIGNED NOT NULL,
  conversation_id BIGINT UNSIGNED NOT NULL,
  -- 1 = owner, 2 = admin, 3 = member.
  role TINYINT UNSIGNED NOT NULL,
  joined_seq BIGINT UNSIGNED NOT NULL,
  joined_at_us BIGINT NOT NULL,
  -- Set when the member was removed or left: the seq of that entry.
  left_seq BIGINT UNSIGNED NULL,
  left_at_us BIGINT NULL,
  PRIMARY KEY (user_id, conversation_id),
  -- Fan-out and member lists.
  KEY ix_memberships_conversation (conversation_id, user_id),
  CONSTRAINT fk_memberships_user FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT fk_memberships_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id)
) ENGINE=InnoDB;

-- The conversation log. A page is one range scan of the primary key.
CREATE TABLE messages (
  conversation_id BIGINT UNSIGNED NOT NULL,
  seq BIGINT UNSIGNED NOT NULL,
  sender_id BIGINT UNSIGNED NOT NULL,
  client_msg_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- 1 = message, 2 = member event.
  kind TINYINT UNSIGNED NOT NULL,
  -- Message text as sent (empty for member events).
  text MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  content_type VARCHAR(64) CHARACTER SET ascii NOT NULL DEFAULT '',
  -- Serialized protobuf of the rest of the body: im.message.v1.Message
  -- holding only `metadata` for messages, im.message.v1.MemberEvent for
  -- member events. NULL when empty.
  extra MEDIUMBLOB NULL,
  sent_at_us BIGINT NOT NULL,
  PRIMARY KEY (conversation_id, seq),
  UNIQUE KEY uk_messages_dedup (conversation_id, sender_id, client_msg_id)
) ENGINE=InnoDB;

-- Read markers, monotonic: read_seq only moves up.
CREATE TABLE read_markers (
  user_id BIGINT UNSIGNED NOT NULL,
  conversation_id BIGINT UNSIGNED NOT NULL,
  read_seq BIGINT UNSIGNED NOT NULL,
  updated_at_us BIGINT NOT NULL,
  PRIMARY KEY (user_id, conversation_id)
) ENGINE=InnoDB;
