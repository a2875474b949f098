-- Dispatch schema, version 1. Forward-only: later changes go in new files.

CREATE TABLE subscriptions (
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  id text PRIMARY KEY,
  url text NOT NULL,
  event_types text[] NOT NULL,
  description text,
  secret text NOT NULL,
  previous_secret text,
  previous_secret_expires_at timestamptz,
  active boolean NOT NULL DEFAULT true,
  disabled_reason text,
  max_attempts integer,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  id text PRIMARY KEY,
  type text NOT NULL,
  source text,
  data jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_type_seq ON events (type, seq);

-- One row per (event, subscription). No foreign key to subscriptions: a
-- deleted subscription's history stays readable.
--   pending -> processing -> delivered
--                         -> retrying -> processing ...
--                         -> failed
CREATE TABLE deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  subscription_id text NOT NULL,
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'processing', 'delivered', 'retrying', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  -- attempts made before the last manual retry; the budget counts from here
  attempt_base integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_by text,
  locked_until timestamptz,
  last_status_code integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (event_id, subscription_id)
) WITH (
  -- The hot table: every delivery is updated several times, so vacuum it
  -- after a small fraction of churn instead of the default 20 %.
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_insert_scale_factor = 0.05,
  autovacuum_analyze_scale_factor = 0.02
);

-- Claims read only due rows, so this index stays as small as the backlog.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
  WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_leased ON deliveries (locked_until)
  WHERE status = 'processing';
CREATE INDEX deliveries_subscription_waiting ON deliveries (subscription_id)
  WHERE status IN ('pending', 'retrying');

CREATE TABLE delivery_attempts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
  event_id text NOT NULL,
  subscription_id text NOT NULL,
  attempt integer NOT NULL,
  started_at timestamptz NOT NULL,
  duration_ms integer NOT NULL,
  status_code integer,
  error_class text,
  error text,
  response_body text,
  response_headers jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX delivery_attempts_event ON delivery_attempts (event_id, id);
-- Attempt numbers never repeat, which makes writing results idempotent.
CREATE UNIQUE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
