DROP TABLE booked_events;
DELETE FROM chain_txs WHERE purpose = 'settle';
ALTER TABLE chain_txs DROP CONSTRAINT chain_txs_purpose_check;
ALTER TABLE chain_txs ADD CONSTRAINT chain_txs_purpose_check
    CHECK (purpose IN ('commit', 'reveal', 'claim'));
