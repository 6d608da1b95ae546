-- Leases and the prover registry live in the dispatcher's memory
-- (docs/ARCHITECTURE.md, "Aggregator"); these columns and this table were
-- never written by the daemon.
DROP TABLE provers;
ALTER TABLE proof_tasks DROP COLUMN lease_holder;
ALTER TABLE proof_tasks DROP COLUMN lease_expires_at;
