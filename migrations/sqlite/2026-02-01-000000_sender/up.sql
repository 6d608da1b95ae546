-- The on-chain submission side (sqlite flavour, column-for-column identical to
-- the other backend's): the sender's per-sequence work and the transaction
-- outbox. Amounts in wei and fees are decimal TEXT (they exceed BIGINT).

-- A proven sequence handed to the sender, until it is rewarded, dropped or
-- given up on. Not tied to sequences by a foreign key: a reorg rewind removes
-- the sequence and its submission together (see queries::rewind).
CREATE TABLE submissions (
    rollup TEXT NOT NULL,
    init_batch BIGINT NOT NULL,
    final_batch BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'done')),
    -- Why it is done: rewarded, verified_by_others, missed, abandoned.
    outcome TEXT,
    -- The window of our latest commit (0: none yet) and the hash committed.
    window_id BIGINT NOT NULL DEFAULT 0,
    proof_hash BLOB,
    commits INTEGER NOT NULL DEFAULT 0,
    reward_wei TEXT NOT NULL DEFAULT '0',
    penalty_wei TEXT NOT NULL DEFAULT '0',
    note TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rollup, init_batch)
);
CREATE INDEX submissions_status ON submissions (status);

-- The transaction outbox (one row per nonce we used). A row is written with
-- its signed bytes before the first broadcast, so a restart re-broadcasts the
-- same transaction instead of sending a second one.
CREATE TABLE chain_txs (
    id TEXT PRIMARY KEY NOT NULL,
    chain_id BIGINT NOT NULL,
    sender BLOB NOT NULL,
    nonce BIGINT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('commit', 'reveal', 'claim')),
    rollup TEXT NOT NULL,
    init_batch BIGINT NOT NULL,
    window_id BIGINT NOT NULL,
    to_addr BLOB NOT NULL,
    calldata BLOB NOT NULL,
    gas_limit BIGINT NOT NULL,
    max_fee_per_gas TEXT NOT NULL,
    max_priority_fee_per_gas TEXT NOT NULL,
    -- The latest signed envelope and its hash; every hash ever sent for this
    -- nonce (JSON array of 0x-hex), since any of them may be the one mined.
    raw_tx BLOB NOT NULL,
    tx_hash BLOB NOT NULL,
    hashes TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'mined', 'confirmed', 'reverted')),
    sent_block BIGINT NOT NULL,
    replacements INTEGER NOT NULL DEFAULT 0,
    mined_block BIGINT,
    mined_hash BLOB,
    gas_used BIGINT,
    effective_gas_price TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (chain_id, sender, nonce)
);
CREATE INDEX chain_txs_status ON chain_txs (chain_id, status);
CREATE INDEX chain_txs_sequence ON chain_txs (rollup, init_batch);
