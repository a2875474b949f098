-- Dispatch schema, version 9: every function of Dispatch's is named dispatch_….
-- claims_out() (version 6) counts a subscription's claims out; its name did not
-- say whose it is.
ALTER FUNCTION claims_out(bigint) RENAME TO dispatch_claims_out;
