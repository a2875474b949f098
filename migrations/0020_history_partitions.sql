-- Dispatch schema, version 20: history in time partitions, dropped whole.
--
-- events, deliveries and delivery_attempts (the 'events' family) are
-- partitioned by range of the event's creation time: events by created_at,
-- deliveries by created_at (ingest gives a delivery its event's), attempts
-- by delivery_created_at. The three tables have the same partitions, listed
-- in history_partitions, so retention drops an event with its deliveries and
-- attempts, three tables at a time, instead of deleting rows
-- (docs/operations.md#retention). audit_log (the 'audit' family) is
-- partitioned by `at` the same way, with a retention of its own.
--
-- The tables as they were become the first partition, `legacy` (everything
-- before this migration): no row is copied. The migration builds the unique
-- indexes that now include the partition key, and reads each table once to
-- check its bound; it holds its locks while it does, so ingest waits for it.

CREATE TABLE history_partitions (
  -- 'events' (events, deliveries, delivery_attempts) or 'audit' (audit_log).
  family text NOT NULL CHECK (family IN ('events', 'audit')),
  suffix text NOT NULL,
  from_at timestamptz NOT NULL,
  to_at timestamptz NOT NULL,
  PRIMARY KEY (family, suffix),
  UNIQUE (family, to_at),
  CHECK (from_at < to_at)
);

-- The tables of a family, in the order their partitions are made; they are
-- locked and dropped in the reverse order.
CREATE FUNCTION dispatch_history_tables(family text) RETURNS text[]
  LANGUAGE sql IMMUTABLE
  AS $$
    SELECT CASE family WHEN 'events' THEN ARRAY['events', 'deliveries', 'delivery_attempts']
      WHEN 'audit' THEN ARRAY['audit_log'] END
  $$;

-- The bound of the `legacy` partitions: read once every writer is out. A row
-- carries its transaction's start, so none committed before these locks can
-- be later than the clock after them (now() could be: ingest may commit
-- between this transaction's start and its locks).
LOCK TABLE events, deliveries, delivery_attempts, audit_log IN ACCESS EXCLUSIVE MODE;
SELECT set_config('dispatch.partitioned_at', clock_timestamp()::text, true);

-- Unique keys of a partitioned table must include its partition key. Event
-- ids stay unique by dispatch_insert_events (a lock per id, then a look in
-- every partition); the foreign keys go: the three tables' rows are created
-- together and dropped together.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_delivery_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_pkey, DROP CONSTRAINT events_seq_key;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey;
DROP INDEX deliveries_event_subscription;
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_pkey;
DROP INDEX delivery_attempts_delivery;

-- An attempt's partition is its delivery's. The attempts recorded before this
-- migration are in `legacy` with their deliveries; -infinity puts them there
-- without rewriting the table.
ALTER TABLE delivery_attempts ADD COLUMN delivery_created_at timestamptz NOT NULL
  DEFAULT '-infinity';
ALTER TABLE delivery_attempts ALTER COLUMN delivery_created_at DROP DEFAULT;

-- Each table becomes `<table>_legacy`, its indexes `<index>_legacy`, and a
-- partitioned table of the same shape takes its name. Its indexes, made
-- below with the old names, take the legacy ones over without a rebuild. The
-- identity column becomes a plain sequence, which partitions share, going on
-- from where the identity was.
CREATE FUNCTION pg_temp.dispatch_partition(tab text, key text, serial text) RETURNS void
  LANGUAGE plpgsql AS $$
  DECLARE
    idx text;
    con record;
    last bigint;
    seq text := tab || '_' || serial || '_seq';
  BEGIN
    EXECUTE format('SELECT coalesce(max(%I), 0) FROM %I', serial, tab) INTO last;
    last := greatest(last, coalesce((SELECT s.last_value FROM pg_sequences s
      WHERE s.schemaname = current_schema() AND s.sequencename = seq), 0));
    EXECUTE format('ALTER TABLE %I ALTER COLUMN %I DROP IDENTITY', tab, serial);
    FOR idx IN SELECT indexname FROM pg_indexes
      WHERE schemaname = current_schema() AND tablename = tab
    LOOP
      EXECUTE format('ALTER INDEX %I RENAME TO %I', idx, idx || '_legacy');
    END LOOP;
    EXECUTE format('ALTER TABLE %I RENAME TO %I', tab, tab || '_legacy');
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING GENERATED
      INCLUDING STORAGE) PARTITION BY RANGE (%I)', tab, tab || '_legacy', key);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
      tab, tab || '_legacy', current_setting('dispatch.partitioned_at'));
    -- After the attach: a check the legacy table has merges with it unscanned,
    -- and one it has NOT VALID (version 3) stays so there.
    FOR con IN SELECT c.conname, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
      WHERE c.conrelid = (tab || '_legacy')::regclass AND c.contype = 'c'
    LOOP
      EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', tab, con.conname, con.def);
    END LOOP;
    EXECUTE format('CREATE SEQUENCE %I AS bigint OWNED BY %I.%I', seq, tab, serial);
    PERFORM setval(seq, last + 1, false);
    EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET DEFAULT nextval(%L)', tab, serial, seq);
  END
  $$;
SELECT pg_temp.dispatch_partition('events', 'created_at', 'seq');
SELECT pg_temp.dispatch_partition('deliveries', 'created_at', 'id');
SELECT pg_temp.dispatch_partition('delivery_attempts', 'delivery_created_at', 'id');
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
SELECT pg_temp.dispatch_partition('audit_log', 'at', 'id');
INSERT INTO history_partitions (family, suffix, from_at, to_at)
SELECT f, 'legacy', '-infinity', current_setting('dispatch.partitioned_at')::timestamptz
FROM unnest(ARRAY['events', 'audit']) f;

ALTER TABLE events ADD PRIMARY KEY (id, created_at);
CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_created_at ON events (created_at);
CREATE INDEX events_no_subscribers ON events (seq) WHERE fanned_out = 0;
CREATE INDEX events_tenant ON events (tenant_id, seq) WHERE tenant_id IS NOT NULL;
CREATE INDEX events_type_seq ON events (type, seq);

ALTER TABLE deliveries ADD PRIMARY KEY (id, created_at);
CREATE UNIQUE INDEX deliveries_event_subscription
  ON deliveries (event_id, subscription_seq, created_at);
CREATE INDEX deliveries_failed ON deliveries (subscription_seq, id) WHERE status = 'failed';
CREATE INDEX deliveries_failed_newest ON deliveries (id) WHERE status = 'failed';
CREATE INDEX deliveries_leased ON deliveries (locked_until) WHERE status = 'processing';
CREATE INDEX deliveries_parked ON deliveries (subscription_seq, id)
  WHERE next_attempt_at = 'infinity' AND status IN ('pending', 'retrying');
CREATE INDEX deliveries_pending_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_queued ON deliveries (queue_id, id) WHERE held_by = 'ordering';
CREATE INDEX deliveries_retrying_due ON deliveries (next_attempt_at) WHERE status = 'retrying';
CREATE INDEX deliveries_subscription_held ON deliveries (subscription_seq, next_attempt_at)
  WHERE held_by IS NOT NULL AND status IN ('pending', 'retrying');
CREATE INDEX deliveries_subscription_processing ON deliveries (subscription_seq)
  WHERE status = 'processing';
CREATE INDEX deliveries_subscription_waiting ON deliveries (subscription_seq)
  WHERE status IN ('pending', 'retrying');

ALTER TABLE delivery_attempts ADD PRIMARY KEY (id, delivery_created_at);
CREATE UNIQUE INDEX delivery_attempts_delivery
  ON delivery_attempts (delivery_id, attempt, delivery_created_at);
CREATE INDEX delivery_attempts_event ON delivery_attempts (event_id, id);
CREATE INDEX delivery_attempts_subscription ON delivery_attempts (subscription_seq, started_at)
  INCLUDE (error_class, duration_ms);

ALTER TABLE audit_log ADD PRIMARY KEY (id, at);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id) WHERE tenant_id IS NOT NULL;
CREATE INDEX audit_log_resource ON audit_log (resource_id, id) WHERE resource_id IS NOT NULL;
CREATE INDEX audit_log_actor_key ON audit_log (actor_key_id, id) WHERE actor_key_id IS NOT NULL;

-- The legacy tables' own indexes that no partitioned index took over.
DO $$
DECLARE
  idx text;
BEGIN
  FOR idx IN SELECT i.indexrelid::regclass::text FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid IN ('events_legacy'::regclass, 'deliveries_legacy'::regclass,
      'delivery_attempts_legacy'::regclass, 'audit_log_legacy'::regclass)
      AND NOT c.relispartition
  LOOP
    EXECUTE format('DROP INDEX %s', idx);
  END LOOP;
END
$$;

-- The fifo trigger (version 16) moves to the partitioned table.
DROP TRIGGER deliveries_enqueue_ordered ON deliveries_legacy;
CREATE TRIGGER deliveries_enqueue_ordered AFTER INSERT ON deliveries
  REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_enqueue_ordered();

-- Creates the partitions of a family's tables from its last one's end until
-- `until` has one, each `width` wide and ending on a multiple of it (UTC).
-- Takes a lock so that processes doing it at once do it once. Returns how
-- many it created.
CREATE FUNCTION dispatch_add_history_partitions(family text, width interval, until timestamptz)
  RETURNS integer
  LANGUAGE plpgsql VOLATILE
  SET search_path FROM CURRENT
  AS $$
  DECLARE
    from_at timestamptz;
    to_at timestamptz;
    suffix text;
    tab text;
    created integer := 0;
    step double precision := extract(epoch FROM width);
  BEGIN
    IF step < 60 THEN
      RAISE EXCEPTION 'Partition width must be at least a minute, not %', width
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.history_partitions'),
      hashtext(family));
    SELECT max(p.to_at) INTO from_at FROM history_partitions p WHERE p.family = $1;
    WHILE from_at <= until LOOP
      to_at := to_timestamp((floor(extract(epoch FROM from_at) / step) + 1) * step);
      suffix := to_char(from_at AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MISS');
      FOREACH tab IN ARRAY dispatch_history_tables(family) LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L) %s',
          tab || '_' || suffix, tab, from_at, to_at,
          -- As the table was (version 1): vacuumed after a small fraction of churn.
          CASE tab WHEN 'deliveries' THEN 'WITH (autovacuum_vacuum_scale_factor = 0.01,
            autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02)'
            ELSE '' END);
      END LOOP;
      INSERT INTO history_partitions VALUES (family, suffix, from_at, to_at);
      from_at := to_at;
      created := created + 1;
    END LOOP;
    RETURN created;
  END
  $$;

-- Drops a family's partitions that ended before `before`, oldest first, and
-- returns their suffixes; of the events family, only those that hold no
-- delivery that waits or is in flight (fifo, circuit and limit holds wait
-- too). Each partition is locked before it is checked, so nothing can start
-- its deliveries again in between, and waits at most `lock_wait` for that:
-- the hot path would queue behind it. A partition that could not be locked is
-- left for the next call.
CREATE FUNCTION dispatch_drop_history_partitions(family text, before timestamptz,
  lock_wait interval DEFAULT '100 milliseconds')
  RETURNS text[]
  LANGUAGE plpgsql VOLATILE
  SET search_path FROM CURRENT
  AS $$
  DECLARE
    part history_partitions;
    tables text;
    busy boolean;
    dropped text[] := '{}';
  BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.history_partitions'),
      hashtext(family));
    PERFORM set_config('lock_timeout', (extract(epoch FROM lock_wait) * 1000)::bigint || 'ms',
      true);
    FOR part IN SELECT * FROM history_partitions p
      WHERE p.family = $1 AND p.to_at <= before ORDER BY p.to_at
    LOOP
      SELECT string_agg(quote_ident(t || '_' || part.suffix), ', ' ORDER BY o DESC) INTO tables
      FROM unnest(dispatch_history_tables(family)) WITH ORDINALITY AS u(t, o);
      BEGIN
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', tables);
        busy := false;
        IF family = 'events' THEN
          EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I
            WHERE status IN (''pending'', ''processing'', ''retrying''))',
            'deliveries_' || part.suffix) INTO busy;
        END IF;
        IF NOT busy THEN
          EXECUTE format('DROP TABLE %s', tables);
          DELETE FROM history_partitions p WHERE p.family = $1 AND p.suffix = part.suffix;
          dropped := dropped || part.suffix;
        END IF;
      EXCEPTION WHEN lock_not_available THEN
        NULL;
      END;
    END LOOP;
    RETURN dropped;
  END
  $$;

-- The one ingest statement (version 15), now that no unique index can hold
-- event ids: each id's lock, taken before the statement that looks for it in
-- every partition, keeps ids unique; deliveries get their event's created_at,
-- so they share its partition. A statement run after the locks sees rows
-- committed before them (READ COMMITTED, as the API and dispatch_publish in a
-- default transaction run); in a REPEATABLE READ transaction that began before
-- a concurrent insert of the same id committed, dispatch_publish cannot see it.
CREATE OR REPLACE FUNCTION dispatch_insert_events(
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
  -- One lock per id, in one order, for the rest of the transaction: a
  -- concurrent insert of the same id waits here, then sees this one's row.
  PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.events.id'), h)
  FROM (SELECT DISTINCT hashtext(i.id) AS h FROM unnest(ids) AS i(id) ORDER BY 1) l;
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
    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = i.id)
    RETURNING ev.id, ev.created_at, ev.fanned_out
  ), deliveries_inserted AS (
    -- The deliveries, the one place they are inserted at ingest, in input order: a fifo
    -- queue (migration 14) sends its deliveries in the order of their ids.
    INSERT INTO deliveries (event_id, subscription_id, subscription_seq, created_at)
    SELECT m.event_id, m.subscription_id, m.subscription_seq, ins.created_at
    FROM matched m JOIN ins ON ins.id = m.event_id JOIN input i ON i.id = m.event_id
    ORDER BY i.ord
  )
  SELECT array_agg(ins.id), array_agg(ins.created_at), array_agg(ins.fanned_out)
  INTO created_ids, created_ats, created_fanned
  FROM ins;

  -- A new statement, so it sees what this one created.
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
