DROP TABLE provers;
DROP TABLE proofs;
DROP TABLE proof_tasks;
DROP TABLE rollup_states;
DROP TABLE batches;
DROP TABLE sequences;
DROP TABLE chain_cursors;
