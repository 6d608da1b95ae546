//! The prover protocol's messages (HTTP JSON under `/v1/prover/*`): what
//! the aggregator's server (`api::prover`) accepts and answers, and what
//! the prover worker (`prover::worker`) sends and reads.

use serde::{Deserialize, Serialize};

use super::proof::ShapeKey;
use super::task::TaskInput;
use crate::circuit::Shape;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Unique per worker slot: registering again under a name returns the
    /// same prover id (and its unfinished lease).
    pub name: String,
    pub version: String,
    pub shapes: Vec<ShapeKey>,
    /// Hardware threads the prover proves with (informational).
    pub threads: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub prover_id: String,
    /// A lease lasts this long after a claim or heartbeat.
    pub lease_ms: u64,
    /// Send a heartbeat this often while working on a task.
    pub heartbeat_ms: u64,
    /// The longest a claim waits before answering 204.
    pub poll_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub prover_id: String,
    /// How long to wait for work, capped at `poll_ms`; default `poll_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// A leased task. `kind` and `request` come from [`TaskInput`]: a batch's
/// `request` is a `ProofRequest`, an aggregate's `{"left", "right"}`
/// bundles, a final's `{"bundle"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResponse {
    pub task_id: String,
    pub rollup: String,
    pub seq_height: u64,
    pub first_batch: u64,
    pub last_batch: u64,
    pub shape: Shape,
    pub vk_hash: String,
    /// Earlier leases of this task that ended without a result.
    pub attempts: u32,
    pub lease_expires_at_ms: u64,
    #[serde(flatten)]
    pub input: TaskInput,
}

/// Body of heartbeat and release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    pub prover_id: String,
    pub task_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub lease_expires_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitRequest {
    pub prover_id: String,
    pub task_id: String,
    /// A `ProofOutput` for a batch task, a `ProofBundle` otherwise.
    pub proof: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub accepted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailRequest {
    pub prover_id: String,
    pub task_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailResponse {
    /// `false`: the task reached its attempt cap and is failed.
    pub requeued: bool,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseResponse {
    pub released: bool,
}
