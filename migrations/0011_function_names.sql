-- Dispatch schema, version 11: every function of Dispatch's is named dispatch_….
-- claims_out() (version 6) counts a subscription's claims out; its name did not
-- say whose it is.
ALTER FUNCTION claims_out(bigint) RENAME TO dispatch_claims_out;

-- dispatch_release_held() (version 9) calls it by name when it runs: the same body, with the new name.
CREATE OR REPLACE FUNCTION dispatch_release_held(subscription bigint, slots integer) RETURNS integer
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
