-- Dispatch schema, version 16: per-key ordered delivery.
--
-- A subscription with ordering 'fifo' sends the deliveries of events that
-- share an ordering key one at a time, in ingest order; events without a key
-- form one queue. Each queue (subscription, key) with anything waiting has a
-- row here naming its head: the one delivery of it that may be claimed. The
-- others are parked (next_attempt_at 'infinity', held_by 'ordering') until
-- the head ends (delivered or failed for good), which lets the next one go.

ALTER TABLE subscriptions ADD COLUMN ordering text NOT NULL DEFAULT 'none'
  CHECK (ordering IN ('none', 'fifo'));

ALTER TABLE deliveries DROP CONSTRAINT deliveries_held_by_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_held_by_check
  CHECK (held_by IN ('rate_limit', 'max_in_flight', 'circuit', 'ordering'));

CREATE TABLE delivery_queues (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_seq bigint NOT NULL,
  ordering_key text,
  head bigint NOT NULL,
  UNIQUE NULLS NOT DISTINCT (subscription_seq, ordering_key)
);

-- The queue a fifo delivery joined at fan-out; null for every other delivery.
ALTER TABLE deliveries ADD COLUMN queue_id bigint;

-- A queue's next delivery, oldest first.
CREATE INDEX deliveries_queued ON deliveries (queue_id, id) WHERE held_by = 'ordering';

-- Places the deliveries a statement inserted (`added`) of fifo subscriptions
-- in their queues: the first of a queue that has no head becomes it and stays
-- due, every other one is parked. The upsert takes each queue row's lock, so
-- two transactions publishing to one key (from any process) take turns; the
-- statements after it read with a snapshot of their own, which has the other's
-- head committed. Queues are locked in (subscription, key) order, as
-- dispatch_queue_next is called, so they never deadlock. A head whose delivery
-- no longer waits (cancelled when its subscription was disabled) is replaced.
CREATE FUNCTION dispatch_enqueue_ordered() RETURNS trigger
  LANGUAGE plpgsql VOLATILE
  SET search_path FROM CURRENT
  AS $$
  DECLARE
    ids bigint[];
    queues bigint[];
  BEGIN
    WITH fifo AS (
      SELECT a.id, a.subscription_seq AS seq, e.ordering_key AS key
      FROM added a
      JOIN subscriptions s ON s.seq = a.subscription_seq AND s.ordering = 'fifo'
      JOIN events e ON e.id = a.event_id
    ), queued AS (
      INSERT INTO delivery_queues AS q (subscription_seq, ordering_key, head)
      SELECT seq, key, min(id) FROM fifo GROUP BY seq, key ORDER BY seq, key
      ON CONFLICT (subscription_seq, ordering_key) DO UPDATE SET head = q.head
      RETURNING q.id, q.subscription_seq, q.ordering_key
    )
    SELECT array_agg(f.id), array_agg(q.id) INTO ids, queues
    FROM fifo f
    JOIN queued q ON q.subscription_seq = f.seq AND q.ordering_key IS NOT DISTINCT FROM f.key;
    IF ids IS NULL THEN RETURN NULL; END IF;
    UPDATE delivery_queues q SET head = n.first
    FROM (SELECT u.queue, min(u.id) AS first FROM unnest(ids, queues) AS u(id, queue)
      GROUP BY u.queue) n
    WHERE q.id = n.queue AND NOT EXISTS (SELECT 1 FROM deliveries d
      WHERE d.id = q.head AND d.status IN ('pending', 'retrying', 'processing'));
    UPDATE deliveries d SET queue_id = u.queue,
      held_by = CASE WHEN d.id = q.head THEN NULL ELSE 'ordering' END,
      next_attempt_at = CASE WHEN d.id = q.head THEN d.next_attempt_at ELSE 'infinity' END
    FROM unnest(ids, queues) AS u(id, queue) JOIN delivery_queues q ON q.id = u.queue
    WHERE d.id = u.id;
    RETURN NULL;
  END
  $$;

CREATE TRIGGER deliveries_enqueue_ordered AFTER INSERT ON deliveries
  REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_enqueue_ordered();

-- Called for a delivery of queue `queue` that ended (delivered, failed for
-- good): if it is the queue's head, the next delivery of the queue goes (it
-- becomes the head and is due now), or the queue row goes when nothing waits.
-- The queue row is locked first and the next one is read by a statement of its
-- own, with a snapshot that has every enqueue committed before the lock.
-- Answers how many it let go (0 or 1).
CREATE FUNCTION dispatch_queue_next(queue bigint, ended bigint) RETURNS integer
  LANGUAGE plpgsql VOLATILE
  SET search_path FROM CURRENT
  AS $$
  DECLARE
    next_id bigint;
  BEGIN
    PERFORM 1 FROM delivery_queues WHERE id = queue AND head = ended FOR UPDATE;
    IF NOT FOUND THEN RETURN 0; END IF;
    SELECT id INTO next_id FROM deliveries
    WHERE queue_id = queue AND held_by = 'ordering' ORDER BY id LIMIT 1;
    IF next_id IS NULL THEN
      DELETE FROM delivery_queues WHERE id = queue;
      RETURN 0;
    END IF;
    UPDATE deliveries SET held_by = NULL, next_attempt_at = now(), updated_at = now()
    WHERE id = next_id;
    UPDATE delivery_queues SET head = next_id WHERE id = queue;
    RETURN 1;
  END
  $$;

-- As in version 10, but a delivery parked for its queue is never let go here:
-- only its queue's head ending does that.
CREATE OR REPLACE FUNCTION dispatch_release_held(subscription bigint, slots integer)
  RETURNS integer
  LANGUAGE plpgsql VOLATILE
  SET search_path FROM CURRENT
  AS $$
  DECLARE
    allowed integer;
    released integer;
    timed integer := 0;
  BEGIN
    SELECT CASE
        WHEN circuit_state <> 'closed' THEN 0
        WHEN slots IS NOT NULL THEN slots
        WHEN max_in_flight IS NOT NULL THEN greatest(0, max_in_flight - dispatch_claims_out(seq))
      END
    INTO allowed FROM subscriptions WHERE seq = subscription FOR UPDATE;
    IF NOT FOUND OR allowed = 0 THEN RETURN 0; END IF;
    UPDATE deliveries SET next_attempt_at = now(), held_by = NULL, updated_at = now()
    WHERE id IN (
      SELECT id FROM deliveries
      WHERE subscription_seq = subscription AND next_attempt_at = 'infinity'
        AND status IN ('pending', 'retrying') AND held_by IS DISTINCT FROM 'ordering'
      ORDER BY id LIMIT allowed
      FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS released = ROW_COUNT;
    IF slots IS NULL THEN
      UPDATE deliveries SET next_attempt_at = now(), held_by = NULL, updated_at = now()
      WHERE subscription_seq = subscription AND held_by IS NOT NULL
        AND next_attempt_at < 'infinity' AND status IN ('pending', 'retrying');
      GET DIAGNOSTICS timed = ROW_COUNT;
    END IF;
    RETURN released + timed;
  END
  $$;
