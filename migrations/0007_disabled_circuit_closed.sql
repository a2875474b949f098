-- Dispatch schema, version 7: a disabled subscription's circuit is closed.
-- Nothing of it waits to be held or probed, and dispatch_circuits_open counts
-- only circuits that still hold deliveries back.

UPDATE subscriptions SET circuit_state = 'closed', circuit_opened_at = NULL,
  circuit_next_probe_at = NULL, circuit_cooldown_ms = NULL
WHERE NOT active AND circuit_state <> 'closed';

ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_disabled_circuit_closed
  CHECK (active OR circuit_state = 'closed');
