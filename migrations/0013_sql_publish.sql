-- Dispatch schema, version 13: ordering keys, and publishing from SQL.
--
-- `ordering_key` groups events that a subscription with `ordering = 'fifo'`
-- delivers one at a time, in ingest order (same alphabet as ids).
ALTER TABLE events ADD COLUMN ordering_key text;
