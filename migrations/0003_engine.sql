-- Dispatch schema, version 3: a delivery belongs to the subscription that
-- existed at fan-out, the lease is checked by the database, and event status
-- filters read indexes.
--
-- The delivery lifecycle (src/delivery/lifecycle.ts names and explains each
-- transition):
--
--   pending  --claim--> processing --deliver--> delivered
--   retrying --claim-->            --retry----> retrying
--                                  --fail-----> failed
--                                  --abandon--> failed      (subscription deleted or disabled)
--                                  --hand back-> pending | retrying (never sent: uncounted)
--                                  --rescue---> retrying | failed    (lease expired)
--   pending | retrying --cancel--> failed                   (subscription deleted or disabled)
--   failed   --requeue--> retrying                          (manual retry, fresh budget)

-- Subscription ids can be used again after a delete; seq never is. Null only
-- for deliveries whose subscription was deleted before this version.
ALTER TABLE deliveries ADD COLUMN subscription_seq bigint;
UPDATE deliveries d SET subscription_seq = s.seq FROM subscriptions s WHERE s.id = d.subscription_id;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_subscription_id_key;
CREATE UNIQUE INDEX deliveries_event_subscription ON deliveries (event_id, subscription_seq);
DROP INDEX deliveries_subscription_waiting;
CREATE INDEX deliveries_subscription_waiting ON deliveries (subscription_seq)
  WHERE status IN ('pending', 'retrying');

-- Each state owns its columns: only a claimed delivery has a lease, only a
-- delivered one a delivery time. NOT VALID: checked on every write from now
-- on, without a scan of the history at upgrade.
ALTER TABLE deliveries ADD CONSTRAINT deliveries_lease_only_when_processing
  CHECK ((status = 'processing') = (locked_by IS NOT NULL AND locked_until IS NOT NULL)) NOT VALID;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_delivered_at_only_when_delivered
  CHECK ((status = 'delivered') = (delivered_at IS NOT NULL)) NOT VALID;

-- The dead letters, kept until retention: GET /events?status=failed reaches
-- their events through it (the waiting and leased ones go through the claim's
-- indexes), never by scanning history.
CREATE INDEX deliveries_failed ON deliveries (subscription_seq, id) WHERE status = 'failed';

-- How many deliveries fan-out made; 0 is an event that matched no subscription.
ALTER TABLE events ADD COLUMN fanned_out integer NOT NULL DEFAULT 0;
UPDATE events e SET fanned_out = c.n
  FROM (SELECT event_id, count(*) AS n FROM deliveries GROUP BY event_id) c WHERE e.id = c.event_id;
CREATE INDEX events_no_subscribers ON events (seq) WHERE fanned_out = 0;
