//! The queries, grouped by table. Each is a blocking function on
//! `&mut AnyConnection`; those that write run in [`transaction`](super::transaction)
//! and so also compose into a caller's transaction.

mod chain;
pub mod lease;
mod outbox;
mod sequences;
mod state;
mod tasks;

pub use chain::*;
pub use outbox::*;
pub use sequences::*;
pub use state::*;
pub use tasks::*;
