//! The miner's aggregator: the task pipeline that turns sequences into
//! proofs. This module owns the prover-facing side: the task model
//! ([`task`]), the priority queue with leases ([`queue`]), the prover
//! registry with quarantine ([`provers`]) and the [`Dispatcher`] actor that
//! wraps them for the HTTP prover protocol (`crate::api::prover`).
//!
//! Actors are thin shells over plain structs that hold the logic, so the
//! logic is unit-tested without a running system.

pub mod dispatcher;
pub mod generator;
pub mod ha;
pub mod manager;
pub mod node;
pub mod pause;
pub mod pipeline;
pub mod provers;
pub mod queue;
pub mod sender;
pub mod task;
pub mod verify;

#[cfg(test)]
pub(crate) mod testing;

pub use dispatcher::{
    DispatchError, Dispatcher, DispatcherConfig, DispatcherHandle, ProofAccepted, ProofSink, ProofVerifier, TaskFailed,
};
pub use provers::{ProverInfo, ProverRegistry, RegistryConfig};
pub use queue::{Lease, QueueConfig, QueueError, TaskQueue};
pub use task::{NewTask, ProofBundle, ProofPayload, Task, TaskId, TaskInput, TaskKind, TaskStatus};
