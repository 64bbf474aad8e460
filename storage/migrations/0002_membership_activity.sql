-- The conversation list (ListConversationsPage) without a sort: each
-- membership carries its conversation's last_activity_at_us, kept equal by
-- every writer in the transaction that moves the conversation's, so a
-- user's conversations, newest first, are one range scan of
-- ix_memberships_user_activity instead of a join of all of them with
-- conversations and a filesort. Rows of former members keep the value from
-- when they left (the list shows active memberships only).

ALTER TABLE memberships
  ADD COLUMN last_activity_at_us BIGINT NOT NULL DEFAULT 0 AFTER left_at_us,
  ADD KEY ix_memberships_user_activity (user_id, last_activity_at_us,
                                        conversation_id);

UPDATE memberships m JOIN conversations c ON c.id = m.conversation_id
  SET m.last_activity_at_us = c.last_activity_at_us;
