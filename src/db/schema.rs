//! The diesel schema, written by hand to match `migrations/sqlite` and
//! `migrations/postgres` (which are column-for-column identical).

diesel::table! {
    chain_cursors (chain_id) {
        chain_id -> BigInt,
        block_number -> BigInt,
        block_hash -> Binary,
        updated_at -> BigInt,
    }
}

diesel::table! {
    sequences (rollup, init_batch) {
        rollup -> Text,
        init_batch -> BigInt,
        final_batch -> BigInt,
        l1_block -> BigInt,
        l1_block_hash -> Binary,
        l1_tx_hash -> Binary,
        posted_at -> BigInt,
        state -> Text,
        verified_at -> Nullable<BigInt>,
        updated_at -> BigInt,
        pruned_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    batches (rollup, batch_num) {
        rollup -> Text,
        batch_num -> BigInt,
        init_batch -> BigInt,
        data -> Binary,
        data_hash -> Binary,
        old_root -> Nullable<Binary>,
        new_root -> Nullable<Binary>,
        witness -> Nullable<Text>,
    }
}

diesel::table! {
    rollup_states (rollup, last_executed_batch) {
        rollup -> Text,
        last_executed_batch -> BigInt,
        root -> Binary,
        accounts -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    proof_tasks (id) {
        id -> Text,
        rollup -> Text,
        kind -> Text,
        first_batch -> BigInt,
        last_batch -> BigInt,
        init_batch -> BigInt,
        status -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    proofs (task_id) {
        task_id -> Text,
        payload -> Binary,
        public_inputs -> Text,
        prover -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    submissions (rollup, init_batch) {
        rollup -> Text,
        init_batch -> BigInt,
        final_batch -> BigInt,
        status -> Text,
        outcome -> Nullable<Text>,
        window_id -> BigInt,
        proof_hash -> Nullable<Binary>,
        commits -> Integer,
        reward_wei -> Text,
        penalty_wei -> Text,
        note -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    chain_txs (id) {
        id -> Text,
        chain_id -> BigInt,
        sender -> Binary,
        nonce -> BigInt,
        purpose -> Text,
        rollup -> Text,
        init_batch -> BigInt,
        window_id -> BigInt,
        to_addr -> Binary,
        calldata -> Binary,
        gas_limit -> BigInt,
        max_fee_per_gas -> Text,
        max_priority_fee_per_gas -> Text,
        raw_tx -> Binary,
        tx_hash -> Binary,
        hashes -> Text,
        status -> Text,
        sent_block -> BigInt,
        replacements -> Integer,
        mined_block -> Nullable<BigInt>,
        mined_hash -> Nullable<Binary>,
        gas_used -> Nullable<BigInt>,
        effective_gas_price -> Nullable<Text>,
        error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    booked_events (chain_id, tx_hash, log_index) {
        chain_id -> BigInt,
        tx_hash -> Binary,
        log_index -> BigInt,
        rollup -> Text,
        init_batch -> BigInt,
        kind -> Text,
        amount_wei -> Text,
        block -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    aggregator_lease (name) {
        name -> Text,
        holder -> Text,
        epoch -> BigInt,
        expires_at -> BigInt,
        acquired_at -> BigInt,
    }
}

diesel::joinable!(proofs -> proof_tasks (task_id));
diesel::allow_tables_to_appear_in_same_query!(
    chain_cursors,
    sequences,
    batches,
    rollup_states,
    proof_tasks,
    proofs,
    submissions,
    chain_txs,
    booked_events,
    aggregator_lease,
);
