-- Dispatch schema, version 15: what each endpoint receives.
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
