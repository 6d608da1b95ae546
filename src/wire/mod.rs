//! Types without I/O that cross a process boundary or a module boundary of
//! the aggregator: the proof-task model ([`task`]), the prover protocol's
//! messages ([`prover`]) and the HTTP error body ([`error`]). The
//! aggregator's server and the prover worker both import them from here,
//! so neither depends on the other.

pub mod error;
pub mod prover;
pub mod task;
