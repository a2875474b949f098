-- Dispatch schema, version 11: an event's data as the producer wrote it.
--
-- jsonb keeps numbers as numeric and prints them in full, so `1e308` comes back
-- as 309 digits: a delivery sent from `data::text` could be 50 times the event
-- that was accepted. `data_text` holds the accepted JSON text, which is what
-- deliveries send; `data` stays for reads and comparisons. Events stored
-- before this version have none and are sent from `data`.
ALTER TABLE events ADD COLUMN data_text text;
