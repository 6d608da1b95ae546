-- The aggregator's schema, SQLite flavour. Kept column-for-column identical
-- to migrations/postgres so one diesel schema serves both backends.
-- Conventions: timestamps are BIGINT unix milliseconds; hashes and state
-- roots are 32-byte BLOBs (roots big-endian, as the contract sees them);
-- structured values are JSON in TEXT columns.

-- The watcher's position per base chain.
CREATE TABLE chain_cursors (
    chain_id BIGINT PRIMARY KEY NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash BLOB NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sequences (
    rollup TEXT NOT NULL,
    init_batch BIGINT NOT NULL,
    final_batch BIGINT NOT NULL,
    l1_block BIGINT NOT NULL,
    l1_block_hash BLOB NOT NULL,
    l1_tx_hash BLOB NOT NULL,
    posted_at BIGINT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('posted', 'proving', 'proven', 'committed', 'verified', 'skipped', 'failed')),
    verified_at BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rollup, init_batch),
    CHECK (final_batch >= init_batch)
);
-- A reorg rewind selects by block.
CREATE INDEX sequences_rollup_l1_block ON sequences (rollup, l1_block);

CREATE TABLE batches (
    rollup TEXT NOT NULL,
    batch_num BIGINT NOT NULL,
    init_batch BIGINT NOT NULL,
    data BLOB NOT NULL,
    data_hash BLOB NOT NULL,
    old_root BLOB,
    new_root BLOB,
    witness TEXT,
    PRIMARY KEY (rollup, batch_num),
    FOREIGN KEY (rollup, init_batch) REFERENCES sequences (rollup, init_batch)
);
CREATE INDEX batches_sequence ON batches (rollup, init_batch);

-- Executor snapshots. A restart resumes from the highest last_executed_batch;
-- a few older ones are kept so a reorg can fall back without a full replay.
CREATE TABLE rollup_states (
    rollup TEXT NOT NULL,
    last_executed_batch BIGINT NOT NULL,
    root BLOB NOT NULL,
    accounts TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rollup, last_executed_batch)
);

CREATE TABLE proof_tasks (
    id TEXT PRIMARY KEY NOT NULL,
    rollup TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('batch', 'aggregate', 'final')),
    first_batch BIGINT NOT NULL,
    last_batch BIGINT NOT NULL,
    init_batch BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'leased', 'done', 'failed')),
    lease_holder TEXT,
    lease_expires_at BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (last_batch >= first_batch),
    FOREIGN KEY (rollup, init_batch) REFERENCES sequences (rollup, init_batch)
);
CREATE INDEX proof_tasks_status ON proof_tasks (status);
CREATE INDEX proof_tasks_sequence ON proof_tasks (rollup, init_batch);

CREATE TABLE proofs (
    task_id TEXT PRIMARY KEY NOT NULL REFERENCES proof_tasks (id),
    payload BLOB NOT NULL,
    public_inputs TEXT NOT NULL,
    prover TEXT,
    created_at BIGINT NOT NULL
);

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
