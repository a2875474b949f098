-- Dispatch schema, version 10: deliveries that wait for their subscription
-- are parked, and one function lets them go.
--
-- A delivery held for max_in_flight, or behind a circuit's probe, has
-- nothing to wait for but a change of its subscription: a claim of it that
-- ends, the circuit closing, a PATCH. It is parked: next_attempt_at is
-- 'infinity', past every claim's range scan of the due indexes, so a held
-- backlog of any size costs the claims nothing. held_by still says why.

-- What dispatch_release_held() lets go, oldest first.
CREATE INDEX deliveries_parked ON deliveries (subscription_seq, id)
  WHERE next_attempt_at = 'infinity' AND status IN ('pending', 'retrying');

-- Lets go what a subscription allows now of what waits for it: `slots` of its
-- parked deliveries (a claim of it ended), or, when null (its state changed),
-- what its limits leave (every one without max_in_flight), and whatever waits
-- for a time (a rate slot, a probe), for the claim to judge again. Nothing
-- while its circuit is not closed: the circuit keeps a probe candidate due. The subscription is
-- locked first, and each statement below reads with a snapshot of its own:
-- a claim that parked deliveries of it has committed by then, so none is
-- parked after the release that would have let it go.
CREATE FUNCTION dispatch_release_held(subscription bigint, slots integer) RETURNS integer
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
        AND status IN ('pending', 'retrying')
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
