-- Dispatch schema, version 19: a subscription's attempts of a window, read from the index alone.
--
-- The console (failures per subscription and per hour, success rate, p50/p95) and
-- GET /subscriptions/:id/stats read a subscription's attempts of the last day through
-- (subscription_seq, started_at). Each of those rows lies on its own heap page, so
-- reading its outcome and duration there cost a page read per attempt (about half a
-- second for a day of 33,000 attempts on a small machine). The same index carrying
-- them lets an index-only scan answer: attempts are written once, so the visibility
-- map that such scans need is kept set by autovacuum's insert threshold.
DROP INDEX delivery_attempts_subscription;
CREATE INDEX delivery_attempts_subscription ON delivery_attempts (subscription_seq, started_at)
  INCLUDE (error_class, duration_ms);
