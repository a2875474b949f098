-- Dispatch schema, version 2: retention finds old events without scanning the table.
CREATE INDEX events_created_at ON events (created_at);
