-- Dispatch schema, version 15: ordering keys, and publishing from SQL.
--
-- `ordering_key` groups events that a subscription with `ordering = 'fifo'`
-- delivers one at a time, in ingest order (same alphabet as ids).
ALTER TABLE events ADD COLUMN ordering_key text;

-- Publishing from SQL (docs/sql-publish.md): dispatch_publish() stores an
-- event in the caller's transaction through dispatch_insert_events(), the
-- statement POST /events runs too. Both run with search_path fixed to this
-- schema (set at the end), so they find its tables whatever the caller's is.

-- Fan-out, the one place: the active subscriptions an event reaches, by an
-- index probe of subscriptions_match_keys (version 4), then each one's payload
-- filter (version 13) on the event's `document`. A plain SQL function, so the
-- planner inlines it into its caller.
CREATE FUNCTION dispatch_fan_out(tenant_id text, type text, document jsonb)
  RETURNS TABLE (subscription_id text, subscription_seq bigint)
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$
    SELECT s.id, s.seq FROM subscriptions s
    WHERE s.active
      AND s.match_keys && dispatch_event_keys(dispatch_fan_out.tenant_id, dispatch_fan_out.type)
      AND dispatch_filter_passes(s.filter_path, dispatch_fan_out.document)
  $$;

-- Stores events (arrays of equal length, one element per event; data as JSON
-- text) and, in the same statement, one delivery per subscription each
-- reaches: by fan-out, or only `to_id` (POST /subscriptions/:id/test). An id
-- that exists or repeats is compared with the stored event: the same content
-- (jsonb equality ignores key order) is 'replayed', other content
-- 'conflict'. One row per input, in input order; `fanned` counts the
-- deliveries of a created event. No validation: callers validate. Its plans
-- are made once per connection: planning this statement anew at each call
-- (PL/pgSQL's default here) cost half of ingest's throughput.
CREATE FUNCTION dispatch_insert_events(
  ids text[], types text[], sources text[], data_texts text[], tenant_ids text[],
  ordering_keys text[], to_id text DEFAULT NULL, to_seq bigint DEFAULT NULL
) RETURNS TABLE (outcome text, created_at timestamptz, fanned integer)
  LANGUAGE plpgsql VOLATILE
  SET plan_cache_mode = force_generic_plan
  AS $$
DECLARE
  created_ids text[];
  created_ats timestamptz[];
  created_fanned integer[];
BEGIN
  WITH input AS (
    SELECT DISTINCT ON (i.id) i.id, i.type, i.source, i.data_text::jsonb AS data, i.data_text,
      i.tenant_id, i.ordering_key, i.ord
    FROM unnest(ids, types, sources, data_texts, tenant_ids, ordering_keys) WITH ORDINALITY
      AS i(id, type, source, data_text, tenant_id, ordering_key, ord)
    ORDER BY i.id, i.ord
  ), matched AS (
    SELECT e.id AS event_id, f.subscription_id, f.subscription_seq
    -- OFFSET 0: the filter's document is built once per event, not once per subscription.
    FROM (
      SELECT e.*, dispatch_filter_document(e.id, e.type, e.source, e.tenant_id, e.data) AS document
      FROM input e OFFSET 0
    ) e
    CROSS JOIN LATERAL dispatch_fan_out(e.tenant_id, e.type, e.document) f
    WHERE to_id IS NULL
    UNION ALL
    SELECT e.id, to_id, to_seq FROM input e WHERE to_id IS NOT NULL
  ), counted AS (
    SELECT m.event_id, count(*)::integer AS n FROM matched m GROUP BY m.event_id
  ), ins AS (
    INSERT INTO events AS ev (id, type, source, data, data_text, tenant_id, ordering_key, fanned_out)
    SELECT i.id, i.type, i.source, i.data, i.data_text, i.tenant_id, i.ordering_key,
      coalesce(c.n, 0)
    FROM input i LEFT JOIN counted c ON c.event_id = i.id
    ON CONFLICT (id) DO NOTHING
    RETURNING ev.id, ev.created_at, ev.fanned_out
  ), deliveries_inserted AS (
    -- The deliveries, the one place they are inserted at ingest, in input order: a fifo
    -- queue (migration 14) sends its deliveries in the order of their ids.
    INSERT INTO deliveries (event_id, subscription_id, subscription_seq)
    SELECT m.event_id, m.subscription_id, m.subscription_seq
    FROM matched m JOIN ins ON ins.id = m.event_id JOIN input i ON i.id = m.event_id
    ORDER BY i.ord
  )
  SELECT array_agg(ins.id), array_agg(ins.created_at), array_agg(ins.fanned_out)
  INTO created_ids, created_ats, created_fanned
  FROM ins;

  -- A new statement, so it sees what this one created and what a concurrent
  -- transaction committed while ON CONFLICT waited for it.
  RETURN QUERY
    SELECT
      CASE
        WHEN c.id IS NOT NULL AND i.ord = min(i.ord) OVER (PARTITION BY i.id) THEN 'created'
        WHEN EXISTS (
          SELECT FROM events e
          WHERE e.id = i.id AND e.type = i.type AND e.source IS NOT DISTINCT FROM i.source
            AND e.tenant_id IS NOT DISTINCT FROM i.tenant_id
            AND e.ordering_key IS NOT DISTINCT FROM i.ordering_key
            AND e.data = i.data_text::jsonb
        ) THEN 'replayed'
        ELSE 'conflict'
      END,
      c.created_at, c.fanned
    FROM unnest(ids, types, sources, data_texts, tenant_ids, ordering_keys) WITH ORDINALITY
      AS i(id, type, source, data_text, tenant_id, ordering_key, ord)
    LEFT JOIN unnest(created_ids, created_ats, created_fanned) AS c(id, created_at, fanned)
      ON c.id = i.id
    ORDER BY i.ord;
END
$$;

-- The API's rules that are settings: the largest `data` dispatch_publish()
-- takes, in bytes of its JSON text, and whether only catalog types are taken.
-- Each process that serves the API writes its MAX_PAYLOAD_BYTES and
-- EVENT_TYPES here when it starts, so SQL producers meet the API's rules.
CREATE TABLE dispatch_publish_settings (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  max_data_bytes integer NOT NULL,
  strict_types boolean NOT NULL DEFAULT false
);
INSERT INTO dispatch_publish_settings (max_data_bytes) VALUES (262144);

-- The field rules of POST /events (src/http/schemas.ts): raises 22023
-- (invalid_parameter_value) naming the field, as a word and in COLUMN.
CREATE FUNCTION dispatch_check_id(field text, value text) RETURNS void
  LANGUAGE plpgsql IMMUTABLE
  AS $$
BEGIN
  IF length(value) > 255 OR value !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' THEN
    RAISE EXCEPTION 'Invalid field "%": must be 1 to 255 characters, only letters, digits and _ . : - (starting with a letter or digit)', field
      USING ERRCODE = 'invalid_parameter_value', COLUMN = field;
  END IF;
END
$$;

-- A new event id, as src/ids.ts makes them: 'evt_', the milliseconds since
-- the epoch in base 36 (9 digits, so ids sort by time), 16 random characters.
CREATE FUNCTION dispatch_new_event_id() RETURNS text
  LANGUAGE plpgsql VOLATILE
  AS $$
DECLARE
  alphabet constant text := '0123456789abcdefghijklmnopqrstuvwxyz';
  ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
  bytes bytea := sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
  time_part text := '';
  rand text := '';
BEGIN
  WHILE ms > 0 LOOP
    time_part := substr(alphabet, (ms % 36)::integer + 1, 1) || time_part;
    ms := ms / 36;
  END LOOP;
  FOR n IN 0..15 LOOP
    rand := rand || substr(alphabet, get_byte(bytes, n) % 36 + 1, 1);
  END LOOP;
  RETURN 'evt_' || lpad(time_part, 9, '0') || rand;
END
$$;

-- Publishes one event in the caller's transaction, with the API's rules:
-- returns its id (generated when NULL); raises 22023 for a bad field and
-- 23505 (unique_violation) for an id stored with other content. Workers
-- wake at commit: NOTIFY is delivered then, and never on rollback.
CREATE FUNCTION dispatch_publish(
  id text, type text, data jsonb, source text DEFAULT NULL, tenant_id text DEFAULT NULL,
  ordering_key text DEFAULT NULL
) RETURNS text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  AS $$
DECLARE
  max_bytes integer;
  strict_types boolean;
  result record;
  event_id text := coalesce(id, dispatch_new_event_id());
BEGIN
  PERFORM dispatch_check_id('id', event_id);
  IF type IS NULL THEN
    RAISE EXCEPTION 'Invalid field "type": is required'
      USING ERRCODE = 'invalid_parameter_value', COLUMN = 'type';
  END IF;
  PERFORM dispatch_check_id('type', type);
  IF starts_with(type, 'dispatch.') THEN
    RAISE EXCEPTION 'Invalid field "type": must not start with "dispatch.", which is reserved for Dispatch''s own events'
      USING ERRCODE = 'invalid_parameter_value', COLUMN = 'type';
  END IF;
  -- Characters (code points), as the API's schema counts them.
  IF source IS NOT NULL AND length(source) NOT BETWEEN 1 AND 255 THEN
    RAISE EXCEPTION 'Invalid field "source": must be 1 to 255 characters'
      USING ERRCODE = 'invalid_parameter_value', COLUMN = 'source';
  END IF;
  IF tenant_id IS NOT NULL THEN
    PERFORM dispatch_check_id('tenant_id', tenant_id);
  END IF;
  IF ordering_key IS NOT NULL THEN
    PERFORM dispatch_check_id('ordering_key', ordering_key);
  END IF;
  IF data IS NULL OR jsonb_typeof(data) <> 'object' THEN
    RAISE EXCEPTION 'Invalid field "data": must be a JSON object'
      USING ERRCODE = 'invalid_parameter_value', COLUMN = 'data';
  END IF;
  SELECT s.max_data_bytes, s.strict_types INTO max_bytes, strict_types
  FROM dispatch_publish_settings s;
  IF strict_types AND NOT dispatch_known_type(type) THEN
    RAISE EXCEPTION 'Invalid field "type": "%" is not in the event-type catalog (EVENT_TYPES is strict)', type
      USING ERRCODE = 'invalid_parameter_value', COLUMN = 'type';
  END IF;
  IF octet_length(data::text) > max_bytes THEN
    RAISE EXCEPTION 'Invalid field "data": must be at most % bytes as JSON text', max_bytes
      USING ERRCODE = 'invalid_parameter_value', COLUMN = 'data';
  END IF;
  -- As src/storable.ts: at most 32 nested objects and arrays (the root is
  -- level 0), and no number that a JavaScript receiver reads as Infinity.
  IF jsonb_path_exists(data, 'strict $.**{32 to last} ? (@.type() == "object" || @.type() == "array")') THEN
    RAISE EXCEPTION 'Invalid field "data": must not nest objects and arrays more than 32 deep'
      USING ERRCODE = 'invalid_parameter_value', COLUMN = 'data';
  END IF;
  IF jsonb_path_exists(data, 'strict $.** ? (@.type() == "number" && (@ >= 179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792 || @ <= -179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792))') THEN
    RAISE EXCEPTION 'Invalid field "data": numbers must be finite'
      USING ERRCODE = 'invalid_parameter_value', COLUMN = 'data';
  END IF;

  SELECT * INTO result FROM dispatch_insert_events(
    ARRAY[event_id], ARRAY[type], ARRAY[source], ARRAY[data::text], ARRAY[tenant_id],
    ARRAY[ordering_key]
  );
  IF result.outcome = 'conflict' THEN
    RAISE EXCEPTION 'Event "%" already exists with different content: use a new id', event_id
      USING ERRCODE = 'unique_violation', CONSTRAINT = 'events_pkey';
  END IF;
  IF result.fanned > 0 THEN
    PERFORM pg_notify('dispatch_' || current_schema(), '');
  END IF;
  RETURN event_id;
END
$$;

-- Only roles granted EXECUTE may publish (docs/sql-publish.md); none may
-- call the unchecked insert directly.
REVOKE ALL ON FUNCTION dispatch_publish(text, text, jsonb, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dispatch_insert_events(text[], text[], text[], text[], text[], text[], text, bigint) FROM PUBLIC;

DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION dispatch_publish(text, text, jsonb, text, text, text) SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION dispatch_insert_events(text[], text[], text[], text[], text[], text[], text, bigint) SET search_path = %I, pg_temp', current_schema());
END
$$;
