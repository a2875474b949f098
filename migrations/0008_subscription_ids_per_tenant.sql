-- Dispatch schema, version 10: a subscription id is unique within its tenant
-- (subscriptions without a tenant make one more namespace), so creating a
-- subscription never tells a tenant that another tenant uses the id.
-- Deliveries and attempts refer to a subscription by seq, which stays unique.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_pkey;
ALTER TABLE subscriptions
  ADD CONSTRAINT subscriptions_tenant_id_key UNIQUE NULLS NOT DISTINCT (tenant_id, id);
-- An admin key's look-up by id alone.
CREATE INDEX subscriptions_id ON subscriptions (id);
