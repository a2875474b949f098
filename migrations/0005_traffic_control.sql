-- Dispatch schema, version 5: traffic control per subscription (limits,
-- circuit breaker, auto-disable), first attempts before retries, and what
-- the health and recovery routes read.

ALTER TABLE subscriptions
  -- Deliveries per second (paced) and attempts in flight at once; null: no limit.
  ADD COLUMN rate_limit integer CHECK (rate_limit BETWEEN 1 AND 10000),
  ADD COLUMN max_in_flight integer CHECK (max_in_flight BETWEEN 1 AND 1000),
  -- The earliest time the rate limit lets the next delivery go (GCRA).
  ADD COLUMN rate_next_at timestamptz,
  ADD COLUMN circuit_state text NOT NULL DEFAULT 'closed'
    CHECK (circuit_state IN ('closed', 'open', 'half_open')),
  ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
  ADD COLUMN circuit_opened_at timestamptz,
  ADD COLUMN circuit_next_probe_at timestamptz,
  -- The cool-down the circuit opened with last; it doubles with each failed probe.
  ADD COLUMN circuit_cooldown_ms bigint,
  -- Since when every attempt failed (null after a success): auto-disable reads it.
  ADD COLUMN failing_since timestamptz;

-- A waiting delivery that a limit or an open circuit holds back says which;
-- null for one that waits out its backoff. Claims clear it.
ALTER TABLE deliveries ADD COLUMN held_by text
  CHECK (held_by IN ('rate_limit', 'max_in_flight', 'circuit'));

-- First attempts are claimed before retries: each has an index of its own.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_pending_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_retrying_due ON deliveries (next_attempt_at) WHERE status = 'retrying';
-- max_in_flight counts a subscription's claims through this.
CREATE INDEX deliveries_subscription_processing ON deliveries (subscription_seq)
  WHERE status = 'processing';
-- What a finished attempt or a closed circuit lets go.
CREATE INDEX deliveries_subscription_held ON deliveries (subscription_seq, next_attempt_at)
  WHERE held_by IS NOT NULL AND status IN ('pending', 'retrying');

-- GET /subscriptions/:id/stats reads one subscription's attempts in a window.
ALTER TABLE delivery_attempts ADD COLUMN subscription_seq bigint;
UPDATE delivery_attempts a SET subscription_seq = d.subscription_seq
  FROM deliveries d WHERE d.id = a.delivery_id;
CREATE INDEX delivery_attempts_subscription ON delivery_attempts (subscription_seq, started_at);

-- GET /deliveries?status=failed, newest first: the dead letters across subscriptions.
CREATE INDEX deliveries_failed_newest ON deliveries (id) WHERE status = 'failed';
