-- Protocol v2 (postgres flavour): settlement transactions in the outbox, and
-- the penalties and settler shares booked from the chain's logs.

ALTER TABLE chain_txs DROP CONSTRAINT chain_txs_purpose_check;
ALTER TABLE chain_txs ADD CONSTRAINT chain_txs_purpose_check
    CHECK (purpose IN ('commit', 'reveal', 'claim', 'settle'));

-- Rewards and penalties read from the chain's logs (a penalty can be imposed
-- by anyone settling an expired commit of ours, not only by our own
-- transactions). One row per log, so a restart that reads the same blocks
-- again books nothing twice.
CREATE TABLE booked_events (
    chain_id BIGINT NOT NULL,
    tx_hash BYTEA NOT NULL,
    log_index BIGINT NOT NULL,
    rollup TEXT NOT NULL,
    init_batch BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('penalty', 'settler_share')),
    amount_wei TEXT NOT NULL,
    block BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (chain_id, tx_hash, log_index)
);
