//! The sender's tables: submissions (proven sequences being taken on chain)
//! and the transaction outbox.

use diesel::prelude::*;

use crate::db::models::{
    convert_all, to_db, Addr20, ChainTx, ChainTxRow, Millis, Submission, SubmissionRow, SubmissionStatus, TxStatus,
};
use crate::db::schema::{chain_txs as tx, submissions as sub};
use crate::db::{transaction, AnyConnection, DbError};

/// Hands a proven sequence to the sender; a no-op (returning false) when it
/// already has one, so the proof manager can offer every proven sequence on
/// every pass.
pub fn offer_submission(
    conn: &mut AnyConnection,
    rollup: &str,
    init_batch: u64,
    final_batch: u64,
    now: Millis,
) -> Result<bool, DbError> {
    transaction(conn, |conn| {
        if get_submission(conn, rollup, init_batch)?.is_some() {
            return Ok(false);
        }
        let s = Submission {
            rollup: rollup.to_string(),
            init_batch,
            final_batch,
            status: SubmissionStatus::Active,
            outcome: None,
            window_id: 0,
            proof_hash: None,
            commits: 0,
            reward_wei: 0,
            penalty_wei: 0,
            note: None,
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(sub::table).values(SubmissionRow::try_from(&s)?).execute(conn)?;
        Ok(true)
    })
}

pub fn get_submission(conn: &mut AnyConnection, rollup: &str, init_batch: u64) -> Result<Option<Submission>, DbError> {
    sub::table
        .find((rollup, to_db(init_batch, "init batch")?))
        .select(SubmissionRow::as_select())
        .first(conn)
        .optional()?
        .map(Submission::try_from)
        .transpose()
}

/// Changes a submission in place: reads the row, locked, applies `change`
/// and writes it back in one transaction, so two writers of different
/// fields (the sender's status, the proof manager's bookings) never lose
/// each other's change. SQLite's write transactions are serialized
/// already (`BEGIN IMMEDIATE`); on PostgreSQL the row is read `FOR UPDATE`,
/// without which two read-committed transactions could both read the old
/// row and the second write drop the first. Returns false when there is no
/// such submission.
pub fn update_submission(
    conn: &mut AnyConnection,
    rollup: &str,
    init_batch: u64,
    change: impl FnOnce(&mut Submission),
) -> Result<bool, DbError> {
    let key = (rollup, to_db(init_batch, "init batch")?);
    transaction(conn, |conn| {
        let row: Option<SubmissionRow> = match conn {
            AnyConnection::Postgres(c) => {
                sub::table.find(key).select(SubmissionRow::as_select()).for_update().first(c).optional()?
            }
            AnyConnection::Sqlite(c) => sub::table.find(key).select(SubmissionRow::as_select()).first(c).optional()?,
        };
        let Some(row) = row else { return Ok(false) };
        let mut s = Submission::try_from(row)?;
        change(&mut s);
        save_submission(conn, &s)?;
        Ok(true)
    })
}

/// Submissions of the given rollups (all when empty) in `status` (any when
/// `None`), lowest sequence first: the order they must be verified in.
pub fn list_submissions(
    conn: &mut AnyConnection,
    rollups: &[String],
    status: Option<SubmissionStatus>,
) -> Result<Vec<Submission>, DbError> {
    let mut q = sub::table.into_boxed();
    if !rollups.is_empty() {
        q = q.filter(sub::rollup.eq_any(rollups));
    }
    if let Some(s) = status {
        q = q.filter(sub::status.eq(s.as_str()));
    }
    convert_all(q.order((sub::init_batch.asc(), sub::rollup.asc())).select(SubmissionRow::as_select()).load(conn)?)
}

/// Writes a whole submission row. Private: a caller changes a submission
/// through [`update_submission`], which reads it locked first, so no
/// read-modify-write outside it can drop another writer's change.
fn save_submission(conn: &mut AnyConnection, s: &Submission) -> Result<(), DbError> {
    let row = SubmissionRow::try_from(s)?;
    let n = diesel::update(sub::table.find((&row.rollup, row.init_batch))).set(&row).execute(conn)?;
    if n == 0 {
        return Err(DbError::not_found(format!("submission {}/{}", s.rollup, s.init_batch)));
    }
    Ok(())
}

/// Makes a done submission active again (an operator's resend); returns
/// whether there was one.
pub fn reopen_submission(
    conn: &mut AnyConnection,
    rollup: &str,
    init_batch: u64,
    now: Millis,
) -> Result<bool, DbError> {
    let n = diesel::update(sub::table.find((rollup, to_db(init_batch, "init batch")?)))
        .set((
            sub::status.eq(SubmissionStatus::Active.as_str()),
            sub::outcome.eq(None::<String>),
            sub::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// Records a transaction before its first broadcast.
pub fn insert_tx(conn: &mut AnyConnection, t: &ChainTx) -> Result<(), DbError> {
    diesel::insert_into(tx::table).values(ChainTxRow::try_from(t)?).execute(conn)?;
    Ok(())
}

pub fn save_tx(conn: &mut AnyConnection, t: &ChainTx) -> Result<(), DbError> {
    let row = ChainTxRow::try_from(t)?;
    let n = diesel::update(tx::table.find(&row.id)).set(&row).execute(conn)?;
    if n == 0 {
        return Err(DbError::not_found(format!("transaction {}", t.id)));
    }
    Ok(())
}

pub fn get_tx(conn: &mut AnyConnection, id: &str) -> Result<Option<ChainTx>, DbError> {
    tx::table.find(id).select(ChainTxRow::as_select()).first(conn).optional()?.map(ChainTx::try_from).transpose()
}

/// The transactions of `sender` on a chain that still need watching
/// (pending or mined but not confirmed), lowest nonce first.
pub fn open_txs(conn: &mut AnyConnection, chain_id: u64, sender: &Addr20) -> Result<Vec<ChainTx>, DbError> {
    convert_all(
        tx::table
            .filter(tx::chain_id.eq(to_db(chain_id, "chain id")?))
            .filter(tx::sender.eq(sender.to_vec()))
            .filter(tx::status.eq_any([TxStatus::Pending.as_str(), TxStatus::Mined.as_str()]))
            .order(tx::nonce.asc())
            .select(ChainTxRow::as_select())
            .load(conn)?,
    )
}

/// Every transaction sent for a sequence, oldest first.
pub fn sequence_txs(conn: &mut AnyConnection, rollup: &str, init_batch: u64) -> Result<Vec<ChainTx>, DbError> {
    convert_all(
        tx::table
            .filter(tx::rollup.eq(rollup))
            .filter(tx::init_batch.eq(to_db(init_batch, "init batch")?))
            .order(tx::nonce.asc())
            .select(ChainTxRow::as_select())
            .load(conn)?,
    )
}

/// The transactions of `sender` on a chain, oldest first (for status and tests).
pub fn sender_txs(conn: &mut AnyConnection, chain_id: u64, sender: &Addr20) -> Result<Vec<ChainTx>, DbError> {
    convert_all(
        tx::table
            .filter(tx::chain_id.eq(to_db(chain_id, "chain id")?))
            .filter(tx::sender.eq(sender.to_vec()))
            .order(tx::nonce.asc())
            .select(ChainTxRow::as_select())
            .load(conn)?,
    )
}

/// The nonce after the highest one recorded for `sender` (None: no transaction yet).
pub fn next_recorded_nonce(conn: &mut AnyConnection, chain_id: u64, sender: &Addr20) -> Result<Option<u64>, DbError> {
    let max: Option<i64> = tx::table
        .filter(tx::chain_id.eq(to_db(chain_id, "chain id")?))
        .filter(tx::sender.eq(sender.to_vec()))
        .select(diesel::dsl::max(tx::nonce))
        .first(conn)?;
    Ok(max.map(|n| n as u64 + 1))
}

/// Removes the submissions of sequences a reorg removed (`init_batch >= first`).
pub(crate) fn rewind_submissions(conn: &mut AnyConnection, rollup: &str, first: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(sub::table.filter(sub::rollup.eq(rollup)).filter(sub::init_batch.ge(first))).execute(conn)?)
}

/// Removes a transaction the node refused outright (its nonce was never used).
pub fn delete_tx(conn: &mut AnyConnection, id: &str) -> Result<(), DbError> {
    diesel::delete(tx::table.find(id)).execute(conn)?;
    Ok(())
}

/// Empties the signed bytes and calldata of a sequence's finished
/// transactions (the rows stay: hash, nonce, purpose, fees and outcome).
/// Open ones are left whole, since the monitor may still re-broadcast or
/// bump them. Returns how many rows were emptied.
///
/// Deleted and inserted again rather than updated, for the reason given at
/// [`clear_witnesses`](super::sequences::clear_witnesses): a shrunk row
/// would keep its page.
pub fn strip_sequence_txs(conn: &mut AnyConnection, rollup: &str, init_batch: u64) -> Result<usize, DbError> {
    let init = to_db(init_batch, "init batch")?;
    let open: Vec<&str> = TxStatus::ALL.iter().filter(|s| s.is_open()).map(|s| s.as_str()).collect();
    transaction(conn, |conn| {
        let full = tx::table
            .filter(tx::rollup.eq(rollup))
            .filter(tx::init_batch.eq(init))
            .filter(tx::status.ne_all(open))
            .filter(tx::raw_tx.ne(Vec::<u8>::new()).or(tx::calldata.ne(Vec::<u8>::new())));
        let rows: Vec<ChainTxRow> = full.select(ChainTxRow::as_select()).load(conn)?;
        if rows.is_empty() {
            return Ok(0);
        }
        diesel::delete(tx::table.filter(tx::id.eq_any(rows.iter().map(|r| r.id.clone())))).execute(conn)?;
        let n = rows.len();
        for r in rows {
            let stripped = ChainTxRow { raw_tx: Vec::new(), calldata: Vec::new(), ..r };
            diesel::insert_into(tx::table).values(&stripped).execute(conn)?;
        }
        Ok(n)
    })
}

/// What a booked chain log paid or cost us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookedKind {
    /// A penalty taken from our bond (by our own reveal or by anyone's
    /// settlement of our expired commit).
    Penalty,
    /// Our share of another miner's penalty, for settling its commit.
    SettlerShare,
}

impl BookedKind {
    /// The `booked_events.kind` value.
    fn as_str(self) -> &'static str {
        match self {
            BookedKind::Penalty => "penalty",
            BookedKind::SettlerShare => "settler_share",
        }
    }
}

/// One log of the chain that moved our money.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookedEvent {
    pub chain_id: u64,
    pub tx_hash: [u8; 32],
    pub log_index: u64,
    pub rollup: String,
    pub init_batch: u64,
    pub kind: BookedKind,
    pub amount_wei: u128,
    pub block: u64,
}

/// Books a log once: records it and adds its amount to the sequence's
/// submission (penalty or reward). Returns false, changing nothing, when the
/// log was booked before, so the chain can be read again after a restart.
pub fn book_event(conn: &mut AnyConnection, ev: &BookedEvent, now: Millis) -> Result<bool, DbError> {
    use crate::db::schema::booked_events as be;
    let chain_id = to_db(ev.chain_id, "chain id")?;
    let log_index = to_db(ev.log_index, "log index")?;
    transaction(conn, |conn| {
        let seen: Option<i64> =
            be::table.find((chain_id, ev.tx_hash.to_vec(), log_index)).select(be::log_index).first(conn).optional()?;
        if seen.is_some() {
            return Ok(false);
        }
        diesel::insert_into(be::table)
            .values((
                be::chain_id.eq(chain_id),
                be::tx_hash.eq(ev.tx_hash.to_vec()),
                be::log_index.eq(log_index),
                be::rollup.eq(&ev.rollup),
                be::init_batch.eq(to_db(ev.init_batch, "init batch")?),
                be::kind.eq(ev.kind.as_str()),
                be::amount_wei.eq(ev.amount_wei.to_string()),
                be::block.eq(to_db(ev.block, "block")?),
                be::created_at.eq(now),
            ))
            .execute(conn)?;
        update_submission(conn, &ev.rollup, ev.init_batch, |s| {
            match ev.kind {
                BookedKind::Penalty => s.penalty_wei = s.penalty_wei.saturating_add(ev.amount_wei),
                BookedKind::SettlerShare => s.reward_wei = s.reward_wei.saturating_add(ev.amount_wei),
            }
            s.updated_at = now;
        })?;
        Ok(true)
    })
}

/// Sum of the booked amounts of one kind on a rollup (all time).
pub fn booked_total(conn: &mut AnyConnection, rollup: &str, kind: BookedKind) -> Result<u128, DbError> {
    use crate::db::schema::booked_events as be;
    let amounts: Vec<String> =
        be::table.filter(be::rollup.eq(rollup)).filter(be::kind.eq(kind.as_str())).select(be::amount_wei).load(conn)?;
    amounts.iter().try_fold(0u128, |acc, a| Ok(acc.saturating_add(crate::db::models::wei_from_db(a, "booked amount")?)))
}
