-- Protocol v2 (sqlite flavour): settlement transactions in the outbox, and
-- the penalties and settler shares booked from the chain's logs.

-- SQLite cannot change a CHECK constraint in place: copy the outbox into a
-- table with the new purpose allowed.
CREATE TABLE chain_txs_v2 (
    id TEXT PRIMARY KEY NOT NULL,
    chain_id BIGINT NOT NULL,
    sender BLOB NOT NULL,
    nonce BIGINT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('commit', 'reveal', 'claim', 'settle')),
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
INSERT INTO chain_txs_v2 (id, chain_id, sender, nonce, purpose, rollup, init_batch, window_id, to_addr, calldata, gas_limit, max_fee_per_gas, max_priority_fee_per_gas, raw_tx, tx_hash, hashes, status, sent_block, replacements, mined_block, mined_hash, gas_used, effective_gas_price, error, created_at, updated_at) SELECT id, chain_id, sender, nonce, purpose, rollup, init_batch, window_id, to_addr, calldata, gas_limit, max_fee_per_gas, max_priority_fee_per_gas, raw_tx, tx_hash, hashes, status, sent_block, replacements, mined_block, mined_hash, gas_used, effective_gas_price, error, created_at, updated_at FROM chain_txs;
DROP TABLE chain_txs;
ALTER TABLE chain_txs_v2 RENAME TO chain_txs;
CREATE INDEX chain_txs_status ON chain_txs (chain_id, status);
CREATE INDEX chain_txs_sequence ON chain_txs (rollup, init_batch);

-- Rewards and penalties read from the chain's logs (a penalty can be imposed
-- by anyone settling an expired commit of ours, not only by our own
-- transactions). One row per log, so a restart that reads the same blocks
-- again books nothing twice.
CREATE TABLE booked_events (
    chain_id BIGINT NOT NULL,
    tx_hash BLOB NOT NULL,
    log_index BIGINT NOT NULL,
    rollup TEXT NOT NULL,
    init_batch BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('penalty', 'settler_share')),
    amount_wei TEXT NOT NULL,
    block BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (chain_id, tx_hash, log_index)
);
