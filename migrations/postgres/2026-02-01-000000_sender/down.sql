DROP TABLE chain_txs;
DROP TABLE submissions;
