-- Dispatch schema, version 6: the claim counts a subscription's claims out
-- with a snapshot of its own.
--
-- A statement reads with the snapshot it started with. So a claim that locks a
-- subscription just after another process committed claims of it would not
-- see them in a count of its own, and could exceed max_in_flight. A VOLATILE
-- function takes a fresh snapshot for each query it runs: called once the
-- subscription is locked, it sees every claim committed before the lock.
CREATE FUNCTION claims_out(subscription bigint) RETURNS integer
  LANGUAGE sql VOLATILE
  SET search_path FROM CURRENT
  AS $$
    SELECT count(*)::int FROM deliveries
    WHERE subscription_seq = subscription AND status = 'processing'
  $$;
