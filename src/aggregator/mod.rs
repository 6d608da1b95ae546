//! The miner's aggregator, in three parts and a dispatcher:
//! * the Proof Generator ([`generator`]): a supervisor per sequence and its
//!   BatchProof, Aggregation and Final actors;
//! * the Proof Manager ([`manager`]) and the Proof Sender ([`sender`]):
//!   commit–reveal on chain;
//! * the [`dispatcher`]: the priority queue with leases, the prover registry
//!   with quarantine and the [`Dispatcher`] actor that serves the HTTP
//!   prover protocol (`crate::api::prover`).
//!
//! [`pipeline`] is the database side they share; `crate::node` is the
//! composition root. Actors are thin shells over plain structs that hold
//! the logic, so the logic is unit-tested without a running system.

pub mod dispatcher;
pub mod generator;
pub mod genesis;
pub mod ha;
pub mod manager;
pub mod pause;
pub mod pipeline;
pub mod retention;
pub mod sender;

pub use crate::wire::task::{NewTask, ProofBundle, ProofPayload, Task, TaskId, TaskInput, TaskKind, TaskStatus};
pub use dispatcher::provers::{ProverInfo, ProverRegistry, RegistryConfig};
pub use dispatcher::queue::{Lease, QueueConfig, QueueError, TaskQueue};
pub use dispatcher::{
    DispatchError, Dispatcher, DispatcherConfig, DispatcherHandle, ProofAccepted, ProofSink, ProofVerifier, TaskFailed,
};
