//! The persistence layer against both backends: every scenario below runs
//! once on a fresh SQLite file and once on a fresh PostgreSQL database.

use std::sync::{Arc, Barrier};

use diesel::prelude::*;
use sha2::{Digest, Sha256};
use zkpow::circuit::public::{fr_to_be, PublicInputs};
use zkpow::circuit::sample::genesis_accounts;
use zkpow::circuit::{apply_batch, batch, Fr, Shape, StateTree, Transfer};
use zkpow::db::{self, *};
// The test exercises every data-access module, so it reads them all unqualified.
use zkpow::db::{chain::*, outbox::*, sequences::*, state::*, tasks::*};

/// Generates, for each scenario `fn name(db: Db, url: &str)`, one test per
/// backend: `db::sqlite::name` and `db::postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let (db, dir) = crate::common::sqlite_db();
                    super::$name(db, &crate::common::sqlite_url(&dir));
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let pg = crate::common::postgres_db();
                    super::$name(pg.db().clone(), pg.url());
                }
            )+
        }
    };
}

on_both_backends!(
    migrations_apply_and_are_idempotent,
    sequences_insert_idempotently_and_refuse_conflicts,
    sequence_state_and_listing,
    transactions_compose_and_roll_back,
    rewind_removes_everything_after_the_fork,
    batch_witnesses_and_roots,
    tasks_are_created_idempotently,
    completion_is_atomic_and_happens_once,
    rollup_state_snapshots_round_trip,
    restart_keeps_everything,
    async_run_uses_the_blocking_pool,
    submissions_outbox_and_operator_queries,
    retention_prunes_only_finished_settled_sequences,
    concurrent_submission_changes_are_all_kept,
);

const T0: Millis = 1_700_000_000_000;
const SHAPE: Shape = Shape::TEST;

fn sha(data: &[u8]) -> Hash32 {
    Sha256::digest(data).into()
}

/// Canonical batch bytes that differ per `seed`.
fn batch_bytes(seed: u64) -> Vec<u8> {
    let transfers = [Transfer { from: 1, to: 2, amount: seed + 1, nonce: 0 }];
    batch::encode(SHAPE, &transfers).unwrap()
}

fn new_sequence(rollup: &str, init: u64, fin: u64, l1_block: u64) -> (NewSequence, Vec<NewBatch>) {
    let seq = NewSequence {
        rollup: rollup.to_string(),
        init_batch: init,
        final_batch: fin,
        l1_block,
        l1_block_hash: [l1_block as u8; 32],
        l1_tx_hash: [(init as u8) ^ 0xaa; 32],
        posted_at: T0 + l1_block as i64 * 12_000,
    };
    let batches = (init..=fin)
        .map(|n| {
            let data = batch_bytes(n);
            NewBatch { batch_num: n, data_hash: sha(&data), data }
        })
        .collect();
    (seq, batches)
}

fn insert(conn: &mut AnyConnection, rollup: &str, init: u64, fin: u64, l1_block: u64) -> Inserted {
    let (seq, batches) = new_sequence(rollup, init, fin, l1_block);
    insert_sequence(conn, &seq, &batches, T0).unwrap()
}

/// The tasks of a sequence as the supervisor makes them: a proof per batch,
/// aggregates over adjacent pairs, a final one.
fn tasks_for(rollup: &str, init: u64, fin: u64) -> Vec<NewTask> {
    let task = |kind, first, last| NewTask {
        rollup: rollup.to_string(),
        kind,
        first_batch: first,
        last_batch: last,
        init_batch: init,
    };
    let mut tasks: Vec<NewTask> = (init..=fin).map(|n| task(TaskKind::Batch, n, n)).collect();
    if fin > init {
        tasks.push(task(TaskKind::Aggregate, init, fin));
    }
    tasks.push(task(TaskKind::Final, init, fin));
    tasks
}

fn public_inputs(batch_num: u64) -> PublicInputs {
    PublicInputs {
        domain: Fr::from(7),
        batch_num,
        old_root: Fr::from(batch_num),
        new_root: Fr::from(batch_num + 1),
        data_hash_hi: Fr::from(3),
        data_hash_lo: Fr::from(4),
        miner: Fr::from(5),
    }
}

fn proof(tag: u8, prover: &str) -> NewProof {
    NewProof { payload: vec![tag; 96], public_inputs: vec![public_inputs(1)], prover: Some(prover.to_string()) }
}

/// An outbox row of sequence `init` of rollup "r", pending.
fn sample_tx(id: &str, sender: Addr20, nonce: u64, init: u64) -> ChainTx {
    ChainTx {
        id: id.into(),
        chain_id: 1,
        sender,
        nonce,
        purpose: TxPurpose::Commit,
        rollup: "r".into(),
        init_batch: init,
        window_id: 1,
        to: [9; 20],
        calldata: vec![1, 2, 3],
        gas_limit: 100_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        raw_tx: vec![0x02, 0xf8],
        tx_hash: [nonce as u8; 32],
        hashes: vec![[nonce as u8; 32]],
        status: TxStatus::Pending,
        sent_block: 100,
        replacements: 0,
        mined_block: None,
        mined_hash: None,
        gas_used: None,
        effective_gas_price: None,
        error: None,
        created_at: T0,
        updated_at: T0,
    }
}

fn status(conn: &mut AnyConnection, id: &str) -> TaskStatus {
    get_task(conn, id).unwrap().unwrap().status
}

/// (journal_mode, foreign_keys, busy_timeout, cache_size) of a SQLite connection.
fn sqlite_pragmas(c: &mut diesel::SqliteConnection) -> (String, i32, i32, i32) {
    use diesel::sql_types::{Integer, Text};
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = Text)]
        journal_mode: String,
    }
    #[derive(QueryableByName)]
    struct Keys {
        #[diesel(sql_type = Integer)]
        foreign_keys: i32,
    }
    #[derive(QueryableByName)]
    struct Timeout {
        #[diesel(sql_type = Integer)]
        timeout: i32,
    }
    #[derive(QueryableByName)]
    struct Cache {
        #[diesel(sql_type = Integer)]
        cache_size: i32,
    }
    let mode: Mode = diesel::sql_query("PRAGMA journal_mode").get_result(c).unwrap();
    let keys: Keys = diesel::sql_query("PRAGMA foreign_keys").get_result(c).unwrap();
    let timeout: Timeout = diesel::sql_query("PRAGMA busy_timeout").get_result(c).unwrap();
    let cache: Cache = diesel::sql_query("PRAGMA cache_size").get_result(c).unwrap();
    (mode.journal_mode, keys.foreign_keys, timeout.timeout, cache.cache_size)
}

// ---- scenarios ----

fn migrations_apply_and_are_idempotent(db: Db, url: &str) {
    // A fresh database is fully migrated by connect ...
    let pending = db.with_conn(run_migrations).unwrap();
    assert!(pending.is_empty(), "connect left migrations pending: {pending:?}");
    let mut conn = db.conn().unwrap();
    // The migrated schema is the one the queries expect (the dropped lease
    // columns included): a task row round-trips.
    insert(&mut conn, "m", 1, 1, 10);
    create_tasks(&mut conn, &tasks_for("m", 1, 1), T0).unwrap();
    assert_eq!(sequence_tasks(&mut conn, "m", 1).unwrap().len(), 2);
    // Every pooled SQLite connection gets the settings, not just the first.
    let mut second = db.conn().unwrap();
    for c in [&mut *conn, &mut *second] {
        if let AnyConnection::Sqlite(c) = c {
            assert_eq!(sqlite_pragmas(c), ("wal".to_string(), 1, 5000, -1024));
        }
    }
    drop((conn, second));
    // ... and opening it again while it is in use applies nothing twice.
    let again = Db::connect(url).unwrap();
    assert_eq!(again.backend(), db.backend());
    assert!(again.with_conn(run_migrations).unwrap().is_empty());
}

fn sequences_insert_idempotently_and_refuse_conflicts(db: Db, _url: &str) {
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    assert_eq!(insert(c, "r", 1, 3, 10), Inserted::New);
    // A re-delivered event is a no-op, whatever happened to the sequence since.
    update_sequence_state(c, "r", 1, SequenceState::Proving, T0 + 1).unwrap();
    assert_eq!(insert(c, "r", 1, 3, 10), Inserted::AlreadyPresent);
    assert_eq!(get_sequence(c, "r", 1).unwrap().unwrap().state, SequenceState::Proving);

    // Same key, different contents: the chain disagrees with us.
    let (seq, mut batches) = new_sequence("r", 1, 3, 10);
    batches[1].data.push(0xff);
    assert!(matches!(insert_sequence(c, &seq, &batches, T0), Err(DbError::Conflict(_))));
    let (other_block, batches) = new_sequence("r", 1, 3, 11);
    assert!(matches!(insert_sequence(c, &other_block, &batches, T0), Err(DbError::Conflict(_))));
    let (longer, batches) = new_sequence("r", 1, 4, 10);
    assert!(matches!(insert_sequence(c, &longer, &batches, T0), Err(DbError::Conflict(_))));

    // Overlapping batches at another key are refused and leave nothing behind.
    let (overlap, batches) = new_sequence("r", 3, 5, 12);
    assert!(matches!(insert_sequence(c, &overlap, &batches, T0), Err(DbError::Conflict(_))));
    assert!(get_sequence(c, "r", 3).unwrap().is_none());
    assert!(get_batch(c, "r", 4).unwrap().is_none());

    // Malformed input never reaches the table.
    let (seq, batches) = new_sequence("r", 4, 6, 12);
    assert!(matches!(insert_sequence(c, &seq, &batches[..2], T0), Err(DbError::Invalid(_))));

    let stored = sequence_batches(c, "r", 1).unwrap();
    assert_eq!(stored.iter().map(|b| b.batch_num).collect::<Vec<_>>(), vec![1, 2, 3]);
    let (_, expected) = new_sequence("r", 1, 3, 10);
    for (s, e) in stored.iter().zip(&expected) {
        assert_eq!((s.init_batch, &s.data, s.data_hash), (1, &e.data, e.data_hash));
        assert_eq!((s.old_root, s.new_root, &s.witness), (None, None, &None));
    }
    let seq = get_sequence(c, "r", 1).unwrap().unwrap();
    assert_eq!((seq.final_batch, seq.l1_block, seq.l1_block_hash, seq.batch_count()), (3, 10, [10; 32], 3));
    // Another rollup has its own batch numbers.
    assert_eq!(insert(c, "other", 1, 1, 10), Inserted::New);
}

fn sequence_state_and_listing(db: Db, _url: &str) {
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    // Inserted out of order on purpose: listings sort by batch.
    insert(c, "r", 4, 4, 11);
    insert(c, "r", 1, 3, 10);
    insert(c, "r", 5, 6, 12);
    insert(c, "q", 1, 1, 10);
    let inits = |v: Vec<Sequence>| v.into_iter().map(|s| s.init_batch).collect::<Vec<_>>();
    assert_eq!(inits(unverified_sequences(c, "r").unwrap()), vec![1, 4, 5]);

    let v = update_sequence_state(c, "r", 1, SequenceState::Verified, T0 + 5).unwrap();
    assert_eq!((v.state, v.verified_at, v.updated_at), (SequenceState::Verified, Some(T0 + 5), T0 + 5));
    // Verifying again keeps the first time.
    let v = update_sequence_state(c, "r", 1, SequenceState::Verified, T0 + 9).unwrap();
    assert_eq!(v.verified_at, Some(T0 + 5));
    assert_eq!(get_sequence(c, "r", 1).unwrap().unwrap(), v);
    update_sequence_state(c, "r", 4, SequenceState::Skipped, T0 + 6).unwrap();
    update_sequence_state(c, "r", 5, SequenceState::Failed, T0 + 6).unwrap();

    assert_eq!(inits(unverified_sequences(c, "r").unwrap()), vec![5]);
    assert_eq!(inits(list_sequences(c, "r", &[]).unwrap()), vec![1, 4, 5]);
    assert_eq!(inits(list_sequences(c, "r", &[SequenceState::Verified, SequenceState::Skipped]).unwrap()), vec![1, 4]);
    assert_eq!(inits(unverified_sequences(c, "q").unwrap()), vec![1]);

    // Un-verifying (the verify transaction was reorged out) clears the stamp.
    let v = update_sequence_state(c, "r", 1, SequenceState::Committed, T0 + 10).unwrap();
    assert_eq!(v.verified_at, None);
    assert!(matches!(update_sequence_state(c, "r", 2, SequenceState::Proving, T0), Err(DbError::NotFound(_))));
}

fn transactions_compose_and_roll_back(db: Db, _url: &str) {
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    // Several queries in one caller transaction: all or nothing.
    let failed: Result<(), DbError> = db::transaction(c, |c| {
        insert(c, "r", 1, 2, 10);
        create_tasks(c, &tasks_for("r", 1, 2), T0)?;
        set_chain_cursor(c, 1, 10, &[1; 32], T0)?;
        Err(DbError::Other("caller changed its mind".into()))
    });
    assert!(failed.is_err());
    assert!(get_sequence(c, "r", 1).unwrap().is_none());
    assert!(get_task(c, &task_id("r", TaskKind::Final, 1, 2)).unwrap().is_none());
    assert!(get_chain_cursor(c, 1).unwrap().is_none());

    // A failing inner query rolls back only its own savepoint.
    db::transaction(c, |c| {
        insert(c, "r", 1, 2, 10);
        let (seq, mut batches) = new_sequence("r", 1, 2, 10);
        batches[0].data.push(1);
        assert!(matches!(insert_sequence(c, &seq, &batches, T0), Err(DbError::Conflict(_))));
        set_chain_cursor(c, 1, 10, &[1; 32], T0)
    })
    .unwrap();
    assert!(get_sequence(c, "r", 1).unwrap().is_some());
    assert_eq!(get_chain_cursor(c, 1).unwrap().unwrap().block_number, 10);
}

fn rewind_removes_everything_after_the_fork(db: Db, _url: &str) {
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    insert(c, "r", 1, 2, 10);
    insert(c, "r", 3, 3, 11);
    insert(c, "r", 4, 6, 12);
    insert(c, "r", 7, 7, 14);
    insert(c, "q", 1, 1, 13);
    for (init, fin) in [(1, 2), (3, 3), (4, 6), (7, 7)] {
        create_tasks(c, &tasks_for("r", init, fin), T0).unwrap();
    }
    create_tasks(c, &tasks_for("q", 1, 1), T0).unwrap();
    let done = task_id("r", TaskKind::Batch, 5, 5);
    assert_eq!(complete_task(c, &done, &proof(1, "p"), T0).unwrap(), Completion::Completed);
    let kept = task_id("r", TaskKind::Batch, 3, 3);
    assert_eq!(complete_task(c, &kept, &proof(2, "p"), T0).unwrap(), Completion::Completed);
    for b in [2, 3, 5, 7] {
        let s = RollupState {
            rollup: "r".into(),
            last_executed_batch: b,
            root: [b as u8; 32],
            accounts: vec![],
            updated_at: T0,
        };
        save_rollup_state(c, &s, 10).unwrap();
    }

    // The block at height 12 was reorged out: sequences from 12 on go.
    let r = rewind(c, "r", 11).unwrap();
    assert_eq!(
        r,
        Rewind {
            sequences: 2,
            batches: 4,
            tasks: 3 + 1 + 1 + 1 + 1,
            proofs: 1,
            snapshots: 2,
            first_removed_batch: Some(4)
        }
    );
    let inits: Vec<u64> = list_sequences(c, "r", &[]).unwrap().iter().map(|s| s.init_batch).collect();
    assert_eq!(inits, vec![1, 3]);
    assert!(get_batch(c, "r", 4).unwrap().is_none() && get_batch(c, "r", 3).unwrap().is_some());
    assert!(get_task(c, &done).unwrap().is_none() && get_proof(c, &done).unwrap().is_none());
    assert!(get_proof(c, &kept).unwrap().is_some());
    assert!(sequence_tasks(c, "r", 4).unwrap().is_empty());
    assert_eq!(sequence_tasks(c, "r", 1).unwrap().len(), 4);
    assert_eq!(rollup_state_batches(c, "r").unwrap(), vec![3, 2]);
    assert_eq!(load_rollup_state(c, "r").unwrap().unwrap().last_executed_batch, 3);
    // Other rollups on the chain are rewound by their own call.
    assert!(get_sequence(c, "q", 1).unwrap().is_some());
    // Nothing after the fork: nothing to do.
    assert_eq!(rewind(c, "r", 11).unwrap(), Rewind::default());
    // The rewound batches can be posted again, differently.
    let (seq, mut batches) = new_sequence("r", 4, 5, 12);
    batches[0].data = batch_bytes(99);
    batches[0].data_hash = sha(&batches[0].data);
    assert_eq!(insert_sequence(c, &seq, &batches, T0).unwrap(), Inserted::New);
}

fn batch_witnesses_and_roots(db: Db, _url: &str) {
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    let data = batch::encode(SHAPE, &[Transfer { from: 1, to: 2, amount: 5, nonce: 0 }]).unwrap();
    let seq = NewSequence {
        rollup: "r".into(),
        init_batch: 1,
        final_batch: 1,
        l1_block: 1,
        l1_block_hash: [1; 32],
        l1_tx_hash: [2; 32],
        posted_at: T0,
    };
    let batches = [NewBatch { batch_num: 1, data_hash: sha(&data), data: data.clone() }];
    insert_sequence(c, &seq, &batches, T0).unwrap();

    let mut tree = StateTree::with_accounts(SHAPE.d, genesis_accounts(SHAPE, 4, 100));
    let (witness, _) = apply_batch(&mut tree, SHAPE, &data).unwrap();
    set_batch_witness(c, "r", 1, &witness).unwrap();
    let stored = get_batch(c, "r", 1).unwrap().unwrap();
    assert_eq!(stored.witness.as_ref(), Some(&witness));
    assert_eq!(stored.old_root, Some(fr_to_be(&witness.old_root)));
    assert_eq!(stored.new_root, Some(fr_to_be(&tree.root())));

    // A witness for other bytes, or for a batch we never saw, is refused.
    let mut wrong = witness.clone();
    wrong.batch = batch_bytes(42);
    assert!(matches!(set_batch_witness(c, "r", 1, &wrong), Err(DbError::Invalid(_))));
    assert!(matches!(set_batch_witness(c, "r", 2, &witness), Err(DbError::NotFound(_))));

    assert_eq!(clear_witnesses(c, "r", 1).unwrap(), 1);
    assert_eq!(clear_witnesses(c, "r", 1).unwrap(), 0);
    let stored = get_batch(c, "r", 1).unwrap().unwrap();
    assert_eq!((stored.witness, stored.new_root), (None, Some(fr_to_be(&tree.root()))));

    // The sweep clears witnesses of sequences verified since a time only.
    set_batch_witness(c, "r", 1, &witness).unwrap();
    assert_eq!(clear_verified_witnesses(c, "r", T0).unwrap(), 0, "not verified yet");
    update_sequence_state(c, "r", 1, SequenceState::Verified, T0 + 10).unwrap();
    assert_eq!(clear_verified_witnesses(c, "r", T0 + 11).unwrap(), 0, "verified before the window");
    assert_eq!(clear_verified_witnesses(c, "r", T0 + 10).unwrap(), 1);
    assert!(get_batch(c, "r", 1).unwrap().unwrap().witness.is_none());

    set_batch_roots(c, "r", 1, &[7; 32], &[8; 32]).unwrap();
    let stored = get_batch(c, "r", 1).unwrap().unwrap();
    assert_eq!((stored.old_root, stored.new_root), (Some([7; 32]), Some([8; 32])));
    assert!(matches!(set_batch_roots(c, "r", 9, &[7; 32], &[8; 32]), Err(DbError::NotFound(_))));
}

fn tasks_are_created_idempotently(db: Db, _url: &str) {
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    insert(c, "r", 1, 3, 10);
    let tasks = tasks_for("r", 1, 3);
    assert_eq!(create_tasks(c, &tasks, T0).unwrap(), 5);
    let id = task_id("r", TaskKind::Batch, 2, 2);
    complete_task(c, &id, &proof(1, "p1"), T0 + 10).unwrap();
    // Re-creating after a restart neither duplicates nor resets anything.
    assert_eq!(create_tasks(c, &tasks, T0 + 50).unwrap(), 0);
    let task = get_task(c, &id).unwrap().unwrap();
    assert_eq!((task.status, task.created_at), (TaskStatus::Done, T0));

    let all = sequence_tasks(c, "r", 1).unwrap();
    assert_eq!(all.len(), 5);
    let fin = all.iter().find(|t| t.kind == TaskKind::Final).unwrap();
    assert_eq!((fin.id.as_str(), fin.first_batch, fin.last_batch, fin.init_batch), ("r/final/1-3", 1, 3, 1));
    assert_eq!(all.iter().filter(|t| t.status == TaskStatus::Queued).count(), 4);

    // Tasks belong to a stored sequence.
    assert!(matches!(create_tasks(c, &tasks_for("r", 9, 9), T0), Err(DbError::Conflict(_))));
    let backwards =
        NewTask { rollup: "r".into(), kind: TaskKind::Aggregate, first_batch: 3, last_batch: 2, init_batch: 1 };
    assert!(matches!(create_tasks(c, &[backwards], T0), Err(DbError::Invalid(_))));
}

fn completion_is_atomic_and_happens_once(db: Db, _url: &str) {
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    insert(c, "r", 1, 3, 10);
    create_tasks(c, &tasks_for("r", 1, 3), T0).unwrap();
    let a = task_id("r", TaskKind::Batch, 1, 1);
    let b = task_id("r", TaskKind::Batch, 2, 2);
    let x = task_id("r", TaskKind::Batch, 3, 3);

    let first = proof(1, "p1");
    assert_eq!(complete_task(c, &a, &first, T0 + 50).unwrap(), Completion::Completed);
    assert_eq!(status(c, &a), TaskStatus::Done);
    let stored = get_proof(c, &a).unwrap().unwrap();
    assert_eq!(
        (stored.payload, stored.public_inputs, stored.prover),
        (first.payload.clone(), first.public_inputs.clone(), first.prover.clone())
    );
    assert_eq!(stored.created_at, T0 + 50);
    // A second result is a no-op: the first proof stays.
    assert_eq!(complete_task(c, &a, &proof(2, "p2"), T0 + 60).unwrap(), Completion::AlreadyDone);
    assert_eq!(get_proof(c, &a).unwrap().unwrap().payload, first.payload);

    // Whoever delivers first is stored; the second prover's result is not.
    assert_eq!(complete_task(c, &b, &proof(3, "p1"), T0 + 150).unwrap(), Completion::Completed);
    assert_eq!(get_proof(c, &b).unwrap().unwrap().prover.as_deref(), Some("p1"));
    assert_eq!(complete_task(c, &b, &proof(4, "p2"), T0 + 160).unwrap(), Completion::AlreadyDone);

    // If storing the proof fails, the task is not marked done either.
    diesel::insert_into(schema::proofs::table)
        .values((
            schema::proofs::task_id.eq(&x),
            schema::proofs::payload.eq(vec![9u8]),
            schema::proofs::public_inputs.eq("[]"),
            schema::proofs::created_at.eq(T0),
        ))
        .execute(c)
        .unwrap();
    assert!(matches!(complete_task(c, &x, &proof(5, "p1"), T0), Err(DbError::Conflict(_))));
    assert_eq!(status(c, &x), TaskStatus::Queued);
    assert!(matches!(complete_task(c, "r/batch/9-9", &proof(6, "p1"), T0), Err(DbError::NotFound(_))));

    // Concurrent completions of one task: exactly one stores its proof.
    let fin = task_id("r", TaskKind::Final, 1, 3);
    let start = Arc::new(Barrier::new(3));
    let racers: Vec<_> = (0..3u8)
        .map(|i| {
            let (db, fin, start) = (db.clone(), fin.clone(), start.clone());
            std::thread::spawn(move || {
                let mut conn = db.conn().unwrap();
                start.wait();
                complete_task(&mut conn, &fin, &proof(10 + i, "racer"), T0).unwrap()
            })
        })
        .collect();
    let results: Vec<Completion> = racers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| **r == Completion::Completed).count(), 1, "{results:?}");
}

fn rollup_state_snapshots_round_trip(db: Db, _url: &str) {
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    assert!(load_rollup_state(c, "r").unwrap().is_none());
    let shape = Shape::new(2, 8).unwrap();
    let mut tree = StateTree::with_accounts(shape.d, genesis_accounts(shape, 5, 1_000));
    let snapshot = |tree: &StateTree, batch: u64| RollupState {
        rollup: "r".into(),
        last_executed_batch: batch,
        root: fr_to_be(&tree.root()),
        accounts: tree.accounts().collect(),
        updated_at: T0 + batch as i64,
    };
    let s1 = snapshot(&tree, 1);
    save_rollup_state(c, &s1, 3).unwrap();
    let loaded = load_rollup_state(c, "r").unwrap().unwrap();
    assert_eq!(loaded, s1);
    // The snapshot rebuilds the same tree.
    let rebuilt = StateTree::with_accounts(shape.d, loaded.accounts.clone());
    assert_eq!(fr_to_be(&rebuilt.root()), loaded.root);

    let transfers =
        [Transfer { from: 1, to: 200, amount: 77, nonce: 0 }, Transfer { from: 2, to: 1, amount: 5, nonce: 0 }];
    apply_batch(&mut tree, shape, &batch::encode(shape, &transfers).unwrap()).unwrap();
    for b in 2..=5 {
        save_rollup_state(c, &snapshot(&tree, b), 3).unwrap();
    }
    let newest = load_rollup_state(c, "r").unwrap().unwrap();
    assert_eq!(newest, snapshot(&tree, 5));
    assert!(newest.accounts.iter().any(|(i, a)| *i == 200 && a.balance == 77));
    assert_eq!(rollup_state_batches(c, "r").unwrap(), vec![5, 4, 3]);
    // Saving at the same batch replaces.
    let mut again = snapshot(&tree, 5);
    again.updated_at = T0 + 99;
    save_rollup_state(c, &again, 3).unwrap();
    assert_eq!(load_rollup_state(c, "r").unwrap().unwrap().updated_at, T0 + 99);
    assert_eq!(rollup_state_batches(c, "r").unwrap(), vec![5, 4, 3]);
    assert!(load_rollup_state(c, "q").unwrap().is_none());
}

fn restart_keeps_everything(db: Db, url: &str) {
    let tree = StateTree::with_accounts(SHAPE.d, genesis_accounts(SHAPE, 3, 10));
    let state = RollupState {
        rollup: "r".into(),
        last_executed_batch: 2,
        root: fr_to_be(&tree.root()),
        accounts: tree.accounts().collect(),
        updated_at: T0,
    };
    let done = task_id("r", TaskKind::Batch, 1, 1);
    let open = task_id("r", TaskKind::Batch, 2, 2);
    db.with_conn(|c| {
        set_chain_cursor(c, 31337, 12, &[0xcc; 32], T0)?;
        set_chain_cursor(c, 31337, 14, &[0xdd; 32], T0 + 1)?;
        insert(c, "r", 1, 2, 10);
        update_sequence_state(c, "r", 1, SequenceState::Proving, T0)?;
        create_tasks(c, &tasks_for("r", 1, 2), T0)?;
        complete_task(c, &done, &proof(1, "p1"), T0 + 10)?;
        save_rollup_state(c, &state, 4)
    })
    .unwrap();
    let backend = db.backend();
    drop(db);

    let db = Db::connect(url).unwrap();
    assert_eq!(db.backend(), backend);
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    let cursor = get_chain_cursor(c, 31337).unwrap().unwrap();
    assert_eq!(cursor, ChainCursor { chain_id: 31337, block_number: 14, block_hash: [0xdd; 32], updated_at: T0 + 1 });
    assert!(get_chain_cursor(c, 1).unwrap().is_none());
    let seqs = unverified_sequences(c, "r").unwrap();
    assert_eq!(seqs.len(), 1);
    assert_eq!((seqs[0].state, seqs[0].final_batch), (SequenceState::Proving, 2));
    assert_eq!(sequence_batches(c, "r", 1).unwrap().len(), 2);
    assert_eq!(status(c, &done), TaskStatus::Done);
    assert_eq!(get_proof(c, &done).unwrap().unwrap().payload, proof(1, "p1").payload);
    assert_eq!(status(c, &open), TaskStatus::Queued);
    let tasks = sequence_tasks(c, "r", 1).unwrap();
    assert_eq!(
        tasks.iter().filter(|t| t.status == TaskStatus::Queued).count(),
        3,
        "the other batch, the aggregate, the final"
    );
    assert_eq!(load_rollup_state(c, "r").unwrap().unwrap(), state);
}

fn async_run_uses_the_blocking_pool(db: Db, _url: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        db.run(|c| {
            insert(c, "r", 1, 1, 10);
            create_tasks(c, &tasks_for("r", 1, 1), T0)
        })
        .await
        .unwrap();
        // Many queries at once on a single-threaded runtime: none of them
        // may block the executor thread or the others would never run.
        let id = task_id("r", TaskKind::Batch, 1, 1);
        let completions: Vec<_> = (0..6u8)
            .map(|i| {
                let (db, id) = (db.clone(), id.clone());
                tokio::spawn(async move {
                    db.run(move |c| complete_task(c, &id, &proof(i, &format!("p{i}")), T0)).await.unwrap()
                })
            })
            .collect();
        let mut winners = 0;
        for c in completions {
            winners += (c.await.unwrap() == Completion::Completed) as usize;
        }
        assert_eq!(winners, 1);
        let err = db.run(|c| complete_task(c, "ghost", &proof(9, "p"), T0)).await.unwrap_err();
        assert!(matches!(err, DbError::NotFound(_)) && !err.is_transient());
    });
}

fn submissions_outbox_and_operator_queries(db: Db, _url: &str) {
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    insert(c, "r", 1, 3, 10);
    insert(c, "r", 4, 4, 11);
    insert(c, "r", 5, 6, 12);
    insert(c, "q", 1, 1, 10);
    update_sequence_state(c, "r", 1, SequenceState::Verified, T0).unwrap();
    update_sequence_state(c, "r", 4, SequenceState::Proven, T0).unwrap();
    let mut counts = count_sequences_by_state(c, "r").unwrap();
    counts.sort();
    assert_eq!(counts, vec![(SequenceState::Posted, 1), (SequenceState::Proven, 1), (SequenceState::Verified, 1)]);
    let page = |c: &mut AnyConnection, rollup, state, offset, limit| {
        page_sequences(c, rollup, state, offset, limit)
            .unwrap()
            .iter()
            .map(|s| (s.rollup.clone(), s.init_batch))
            .collect::<Vec<_>>()
    };
    assert_eq!(page(c, Some("r"), None, 0, 2), vec![("r".to_string(), 5), ("r".to_string(), 4)]);
    assert_eq!(page(c, Some("r"), None, 2, 2), vec![("r".to_string(), 1)]);
    assert_eq!(page(c, None, Some(SequenceState::Posted), 0, 10), vec![("r".to_string(), 5), ("q".to_string(), 1)]);

    // A submission is offered once, lists lowest first, and reopens.
    assert!(offer_submission(c, "r", 5, 6, T0).unwrap());
    assert!(offer_submission(c, "r", 4, 4, T0).unwrap());
    assert!(!offer_submission(c, "r", 4, 4, T0 + 1).unwrap(), "offered once");
    let subs = list_submissions(c, &["r".to_string()], Some(SubmissionStatus::Active)).unwrap();
    assert_eq!(subs.iter().map(|s| s.init_batch).collect::<Vec<_>>(), vec![4, 5]);
    let mut s = subs[0].clone();
    s.status = SubmissionStatus::Done;
    s.outcome = Some("rewarded".into());
    s.window_id = 2;
    s.proof_hash = Some([7; 32]);
    s.reward_wei = u128::MAX / 3;
    s.penalty_wei = 25 * 10u128.pow(16);
    assert!(update_submission(c, "r", 4, |x| *x = s.clone()).unwrap());
    assert_eq!(get_submission(c, "r", 4).unwrap().unwrap(), s, "amounts beyond BIGINT round-trip");
    assert!(reopen_submission(c, "r", 4, T0 + 2).unwrap());
    assert_eq!(get_submission(c, "r", 4).unwrap().unwrap().status, SubmissionStatus::Active);
    assert!(!reopen_submission(c, "r", 9, T0).unwrap());

    // The outbox: one row per nonce, open ones listed, the next nonce known.
    let me = [3u8; 20];
    assert_eq!(next_recorded_nonce(c, 1, &me).unwrap(), None);
    let tx = |id: &str, nonce: u64| sample_tx(id, me, nonce, 4);
    insert_tx(c, &tx("a", 0)).unwrap();
    insert_tx(c, &tx("b", 1)).unwrap();
    assert!(insert_tx(c, &tx("c", 1)).is_err(), "a nonce is used once");
    assert_eq!(next_recorded_nonce(c, 1, &me).unwrap(), Some(2));
    let mut a = get_tx(c, "a").unwrap().unwrap();
    assert_eq!(a, tx("a", 0));
    a.hashes.push([0xee; 32]);
    a.status = TxStatus::Confirmed;
    a.mined_block = Some(101);
    a.mined_hash = Some([0xee; 32]);
    a.gas_used = Some(63_900);
    a.effective_gas_price = Some(u128::from(u64::MAX) * 2);
    save_tx(c, &a).unwrap();
    assert_eq!(get_tx(c, "a").unwrap().unwrap(), a);
    assert_eq!(open_txs(c, 1, &me).unwrap().iter().map(|t| t.id.clone()).collect::<Vec<_>>(), vec!["b"]);
    assert_eq!(sequence_txs(c, "r", 4).unwrap().len(), 2);
    delete_tx(c, "b").unwrap();
    assert_eq!(sender_txs(c, 1, &me).unwrap().len(), 1);

    // A reorg that removes a sequence removes its submission too.
    rewind(c, "r", 11).unwrap();
    assert!(get_submission(c, "r", 5).unwrap().is_none());
    assert!(get_submission(c, "r", 4).unwrap().is_some());
}

#[test]
fn sqlite_urls_create_the_file_and_its_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/zkpow.db");
    let db = Db::connect(path.to_str().unwrap()).unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    db.with_conn(|c| set_chain_cursor(c, 5, 6, &[7; 32], T0)).unwrap();
    drop(db);
    assert!(path.is_file());
    // The same file under the other spellings of a SQLite URL.
    for url in [format!("sqlite://{}", path.display()), format!("sqlite:{}", path.display())] {
        let db = Db::connect(&url).unwrap();
        assert_eq!(db.with_conn(|c| get_chain_cursor(c, 5)).unwrap().unwrap().block_number, 6);
    }
    assert!(matches!(Db::connect("mysql://localhost/zkpow"), Err(DbError::InvalidUrl(_))));
}

fn retention_prunes_only_finished_settled_sequences(db: Db, _url: &str) {
    use zkpow::aggregator::retention::{prune_settled, Pruned};
    let mut conn = db.conn().unwrap();
    let c = &mut *conn;
    let me = [4u8; 20];
    // From 1: a transaction's hash is its nonce repeated, and all-zero
    // would read as "no hash".
    let mut nonce = 1;
    // (init, fin, state, submission done?, its transactions' statuses)
    type Case<'a> = (u64, u64, SequenceState, Option<bool>, &'a [TxStatus]);
    let cases: [Case; 6] = [
        (1, 2, SequenceState::Verified, Some(true), &[TxStatus::Confirmed, TxStatus::Reverted, TxStatus::Confirmed]),
        (3, 3, SequenceState::Verified, Some(false), &[TxStatus::Confirmed]),
        (4, 4, SequenceState::Verified, Some(true), &[TxStatus::Confirmed, TxStatus::Mined]),
        (5, 5, SequenceState::Proven, None, &[]),
        (6, 6, SequenceState::Skipped, None, &[]),
        (7, 7, SequenceState::Verified, Some(true), &[TxStatus::Confirmed]),
    ];
    for (i, (init, fin, state, done, txs)) in cases.iter().enumerate() {
        insert(c, "r", *init, *fin, 10 + i as u64);
        create_tasks(c, &tasks_for("r", *init, *fin), T0).unwrap();
        for t in tasks_for("r", *init, *fin) {
            complete_task(c, &t.id(), &proof(*init as u8, "p"), T0).unwrap();
        }
        // 7 settles last, inside the keep period of the pass below.
        let at = if *init == 7 { T0 + 9_000 } else { T0 };
        update_sequence_state(c, "r", *init, *state, at).unwrap();
        if let Some(done) = done {
            offer_submission(c, "r", *init, *fin, T0).unwrap();
            let status = if *done { SubmissionStatus::Done } else { SubmissionStatus::Active };
            assert!(update_submission(c, "r", *init, |s| s.status = status).unwrap());
        }
        for status in txs.iter() {
            let mut t = sample_tx(&format!("tx-{nonce}"), me, nonce, *init);
            t.status = *status;
            insert_tx(c, &t).unwrap();
            nonce += 1;
        }
    }
    let proofs_of = |c: &mut AnyConnection, init: u64, fin: u64| {
        tasks_for("r", init, fin).iter().filter(|t| get_proof(c, &t.id()).unwrap().is_some()).count()
    };
    assert_eq!(proofs_of(c, 1, 2), 4);

    // Settled at T0, pass at T0 + 10 s keeping 5 s: 1-2 (all final) and 6
    // (skipped, nothing sent) go; 3 (submission active), 4 (a transaction
    // still open), 5 (not settled) and 7 (settled 1 s ago) stay whole.
    let now = T0 + 10_000;
    let p = prune_settled(c, now, 5_000).unwrap();
    assert_eq!(p, Pruned { sequences: 2, proofs: 4 + 2, transactions: 3 });
    assert_eq!(proofs_of(c, 1, 2), 0);
    let seq = get_sequence(c, "r", 1).unwrap().unwrap();
    assert_eq!((seq.state, seq.pruned_at), (SequenceState::Verified, Some(now)));
    for t in sequence_txs(c, "r", 1).unwrap() {
        assert!(t.raw_tx.is_empty() && t.calldata.is_empty(), "{}", t.id);
        assert_ne!(t.tx_hash, [0; 32], "the row and its hash stay");
    }
    assert_eq!(get_submission(c, "r", 1).unwrap().unwrap().status, SubmissionStatus::Done);
    assert_eq!(sequence_tasks(c, "r", 1).unwrap().len(), 4, "tasks stay as history");
    assert_eq!(get_sequence(c, "r", 6).unwrap().unwrap().pruned_at, Some(now));
    for (init, fin) in [(3, 3), (4, 4), (5, 5), (7, 7)] {
        assert_eq!(get_sequence(c, "r", init).unwrap().unwrap().pruned_at, None, "{init}");
        assert_eq!(proofs_of(c, init, fin), 2, "{init}");
        assert!(sequence_txs(c, "r", init).unwrap().iter().all(|t| !t.raw_tx.is_empty()), "{init}");
    }

    // A second pass has nothing left to do; once 3's submission is done and
    // 4's transaction final, and 7's keep period over, they go too.
    assert_eq!(prune_settled(c, now, 5_000).unwrap(), Pruned::default());
    assert!(update_submission(c, "r", 3, |s| s.status = SubmissionStatus::Done).unwrap());
    let mut open = sequence_txs(c, "r", 4).unwrap().into_iter().find(|t| t.status == TxStatus::Mined).unwrap();
    open.status = TxStatus::Confirmed;
    save_tx(c, &open).unwrap();
    let p = prune_settled(c, T0 + 20_000, 5_000).unwrap();
    assert_eq!(p, Pruned { sequences: 3, proofs: 6, transactions: 4 });
    assert_eq!(get_sequence(c, "r", 5).unwrap().unwrap().pruned_at, None, "never while unsettled");
}

fn concurrent_submission_changes_are_all_kept(db: Db, _url: &str) {
    {
        let mut conn = db.conn().unwrap();
        insert(&mut conn, "r", 1, 1, 10);
        offer_submission(&mut conn, "r", 1, 1, T0).unwrap();
    }
    // Two writers, as the sender and the proof manager are, each adding to
    // its own field of the same row many times at once: every change stays.
    const ROUNDS: u128 = 40;
    let writers: Vec<_> = [true, false]
        .into_iter()
        .map(|reward| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let mut conn = db.conn().unwrap();
                    let found = update_submission(&mut conn, "r", 1, |s| {
                        if reward {
                            s.reward_wei += 1;
                        } else {
                            s.penalty_wei += 1;
                        }
                    })
                    .unwrap();
                    assert!(found);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let s = db.with_conn(|c| get_submission(c, "r", 1)).unwrap().unwrap();
    assert_eq!((s.reward_wei, s.penalty_wei), (ROUNDS, ROUNDS));
    assert!(!db.with_conn(|c| update_submission(c, "r", 9, |_| {})).unwrap(), "no such submission");
}
