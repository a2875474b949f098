-- Dispatch schema, version 4: tenants, managed API keys, and fan-out by index.

-- A tenant is not a table of its own: it is the tenant_id its subscriptions
-- and events carry. A subscription's tenant never changes.
ALTER TABLE subscriptions ADD COLUMN tenant_id text;
ALTER TABLE events ADD COLUMN tenant_id text;
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, seq) WHERE tenant_id IS NOT NULL;
-- GET /events?tenant_id= and GET /tenants/:id (deliveries are reached through the events).
CREATE INDEX events_tenant ON events (tenant_id, seq) WHERE tenant_id IS NOT NULL;

-- Fan-out by index. A subscription is found by one key per pattern,
-- '<tenant> <pattern>' ('' for no tenant: ids never contain a space), and an
-- event looks up the keys of every pattern that matches its type:
-- '<tenant> <type>', '<tenant> *' and, for a.b.c, '<tenant> a.*' and
-- '<tenant> a.b.*'. '*' does not match the operator's own events (types
-- that start with 'dispatch.'); 'dispatch.*' and exact types do.
CREATE FUNCTION dispatch_match_keys(tenant_id text, patterns text[]) RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN ARRAY(SELECT coalesce(tenant_id, '') || ' ' || p FROM unnest(patterns) p);

CREATE FUNCTION dispatch_event_keys(tenant_id text, type text) RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN ARRAY(
    SELECT coalesce(tenant_id, '') || ' ' || k FROM (
      SELECT type AS k
      UNION ALL SELECT '*' WHERE NOT starts_with(type, 'dispatch.')
      UNION ALL SELECT array_to_string((string_to_array(type, '.'))[1:n], '.') || '.*'
        FROM generate_series(1, cardinality(string_to_array(type, '.')) - 1) n
    ) keys);

ALTER TABLE subscriptions ADD COLUMN match_keys text[]
  GENERATED ALWAYS AS (dispatch_match_keys(tenant_id, event_types)) STORED;
-- Only active subscriptions are in it, so an inactive one never matches and
-- costs nothing. Subscriptions change rarely: no pending list to scan.
CREATE INDEX subscriptions_match_keys ON subscriptions USING gin (match_keys)
  WITH (fastupdate = off) WHERE active;

-- Managed API keys: only the SHA-256 of a token is stored.
CREATE TABLE api_keys (
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  id text PRIMARY KEY,
  token_sha256 bytea NOT NULL UNIQUE,
  scope text NOT NULL CHECK (scope IN ('admin', 'publish', 'tenant')),
  tenant_id text,
  description text,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  last_used_at timestamptz,
  CHECK ((scope = 'tenant') = (tenant_id IS NOT NULL))
);
