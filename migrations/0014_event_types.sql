-- Dispatch schema, version 14: the event-type catalog.
--
-- `schema` (JSON Schema 2020-12 for an event's data) and `example` are json,
-- not jsonb: they come back with their keys in the order they were written.
CREATE TABLE event_types (
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  name text PRIMARY KEY,
  description text,
  schema json,
  example json,
  deprecated boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row: the catalog's version, moved by every change to event_types. Each
-- process reads it at most once a second and reads the types again (and
-- compiles their schemas) only when it moved.
CREATE TABLE event_type_catalog (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  version bigint NOT NULL
);
INSERT INTO event_type_catalog (version) VALUES (0);

-- The catalog beside the table changed, whatever the session's search_path.
CREATE FUNCTION dispatch_event_types_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('UPDATE %I.event_type_catalog SET version = version + 1', TG_TABLE_SCHEMA);
  RETURN NULL;
END $$;

CREATE TRIGGER event_types_changed
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON event_types
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_event_types_changed();

-- Whether a type is in the catalog: what EVENT_TYPES=strict asks of a type,
-- for ingest that does not pass through the API (SQL publishing).
CREATE FUNCTION dispatch_known_type(type text) RETURNS boolean
  LANGUAGE sql STABLE PARALLEL SAFE
  RETURN EXISTS (SELECT 1 FROM event_types WHERE name = type);
