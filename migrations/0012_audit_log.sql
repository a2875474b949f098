-- Dispatch schema, version 12: the audit log.
--
-- One row per request that changes state (or tried to), written in the same
-- transaction as the change. It names who (actor), what (action: the
-- operation's operationId, and the resource) and how it ended (status: the
-- answer's HTTP status); never a secret, a key or a payload. Rows older than
-- AUDIT_RETENTION_DAYS are deleted by the retention worker.
CREATE TABLE audit_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor_type text NOT NULL CHECK (actor_type IN ('api_key', 'env_key', 'console', 'portal', 'open')),
  actor_key_id text,
  actor_tenant_id text,
  action text NOT NULL,
  resource_type text NOT NULL,
  resource_id text,
  tenant_id text,
  status smallint NOT NULL CHECK (status BETWEEN 100 AND 599),
  request_id text NOT NULL
);

-- Newest first is by id; a tenant's entries and the filters' lookups each have an index, and
-- retention deletes by time.
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id) WHERE tenant_id IS NOT NULL;
CREATE INDEX audit_log_resource ON audit_log (resource_id, id) WHERE resource_id IS NOT NULL;
CREATE INDEX audit_log_actor_key ON audit_log (actor_key_id, id) WHERE actor_key_id IS NOT NULL;
