-- Dispatch schema, version 13: what each endpoint receives.
--
-- `headers`: custom request headers, name (lower-case) → value; the values of
-- sensitive names are sealed like signing secrets when DISPATCH_SECRETS_KEY is set.
-- `filter`: a SQL/JSON path predicate as the client wrote it (shown back as is);
-- `filter_path` is it parsed once, here, so fan-out evaluates it without parsing.
-- `format`: the body an endpoint receives, today's envelope or a CloudEvent.
ALTER TABLE subscriptions
  ADD COLUMN headers jsonb NOT NULL DEFAULT '{}',
  ADD COLUMN filter text,
  ADD COLUMN filter_path jsonpath GENERATED ALWAYS AS (filter::jsonpath) STORED,
  ADD COLUMN format text NOT NULL DEFAULT 'standard'
    CONSTRAINT subscriptions_format_check CHECK (format IN ('standard', 'cloudevents'));

-- What a filter sees of an event: built once per event by fan-out (version 15)
-- and by POST /filters/test, so both judge the same document.
CREATE FUNCTION dispatch_filter_document(
  id text, type text, source text, tenant_id text, data jsonb
) RETURNS jsonb
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$
    SELECT jsonb_build_object('id', id, 'type', type, 'source', source, 'tenant_id', tenant_id,
      'data', data)
  $$;

-- Whether an event's document passes a subscription's parsed filter: no
-- filter, or a predicate that is true. False and unknown (`@@` gives NULL for
-- a missing field, a type mismatch or a path that is not a predicate) do not.
CREATE FUNCTION dispatch_filter_passes(path jsonpath, document jsonb) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$
    SELECT path IS NULL OR coalesce(document @@ path, false)
  $$;
