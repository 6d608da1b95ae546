-- Settled sequences give up their proofs and their transactions' signed
-- bytes and calldata after `retention.keep_settled_s` (docs/ARCHITECTURE.md,
-- "Retention"); this marks the sequences that have, so a pass only looks at
-- the ones that have not.
ALTER TABLE sequences ADD COLUMN pruned_at BIGINT;
CREATE INDEX sequences_unpruned ON sequences (state, pruned_at);
