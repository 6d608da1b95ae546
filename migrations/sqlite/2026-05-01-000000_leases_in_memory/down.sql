ALTER TABLE proof_tasks ADD COLUMN lease_holder TEXT;
ALTER TABLE proof_tasks ADD COLUMN lease_expires_at BIGINT;
CREATE TABLE provers (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    shapes TEXT NOT NULL,
    threads INTEGER NOT NULL,
    registered_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    invalid_proofs INTEGER NOT NULL DEFAULT 0,
    quarantined_until BIGINT
);
