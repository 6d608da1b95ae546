//! The daemon's HTTP surface (actix-web): health, metrics, the control API and the prover protocol
//! under `/v1/prover/*`. Every error answers in one JSON shape
//! ([`crate::wire::error::ErrorBody`]); unknown routes included.
//!
//! Handlers are thin: they authenticate, decode, forward a message to an
//! actor and encode the reply. The protocol is documented in
//! `docs/PROTOCOL.md` ("Prover protocol").

pub mod auth;
pub mod control;
pub mod error;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod prover;
pub mod standby;

pub use error::{not_found, ApiError};
pub use prover::ProverApi;
