use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::db::models::{to_db, ChainCursor, ChainCursorRow, Hash32, Millis};
use crate::db::schema::chain_cursors::dsl as cc;
use crate::db::{per_backend, transaction, AnyConnection, DbError};

pub fn get_chain_cursor(conn: &mut AnyConnection, chain_id: u64) -> Result<Option<ChainCursor>, DbError> {
    cc::chain_cursors
        .find(to_db(chain_id, "chain id")?)
        .select(ChainCursorRow::as_select())
        .first(conn)
        .optional()?
        .map(ChainCursor::try_from)
        .transpose()
}

/// Records the last block the watcher fully processed. It may move backwards:
/// after a reorg the watcher rewinds it to the fork point.
pub fn set_chain_cursor(
    conn: &mut AnyConnection,
    chain_id: u64,
    block_number: u64,
    block_hash: &Hash32,
    now: Millis,
) -> Result<(), DbError> {
    let row = ChainCursorRow {
        chain_id: to_db(chain_id, "chain id")?,
        block_number: to_db(block_number, "block number")?,
        block_hash: block_hash.to_vec(),
        updated_at: now,
    };
    transaction(conn, |conn| {
        per_backend!(conn, |c| diesel::insert_into(cc::chain_cursors)
            .values(&row)
            .on_conflict(cc::chain_id)
            .do_update()
            .set((
                cc::block_number.eq(excluded(cc::block_number)),
                cc::block_hash.eq(excluded(cc::block_hash)),
                cc::updated_at.eq(excluded(cc::updated_at)),
            ))
            .execute(c))?;
        Ok(())
    })
}

/// Every chain's watcher position (for readiness checks).
pub fn all_chain_cursors(conn: &mut AnyConnection) -> Result<Vec<ChainCursor>, DbError> {
    cc::chain_cursors.select(ChainCursorRow::as_select()).load(conn)?.into_iter().map(ChainCursor::try_from).collect()
}
