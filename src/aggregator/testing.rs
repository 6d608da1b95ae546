//! Stand-ins for the protocol and worker tests. The names say what they are:
//! these exercise the dispatcher's bookkeeping and the HTTP protocol, not
//! proof verification (the Groth16 verifier is tested with real proofs in
//! the prover module).

use std::sync::{Arc, Mutex};

use actix::prelude::*;

use super::dispatcher::{ProofAccepted, ProofVerifier};
use crate::wire::task::{ProofPayload, Task};

/// Accepts every proof whose kind and batch range fit the task (the
/// dispatcher checks those itself before it asks the verifier).
pub struct AcceptAllVerifierForProtocolTests;

impl ProofVerifier for AcceptAllVerifierForProtocolTests {
    fn verify(&self, _: &Task, _: &ProofPayload) -> Result<(), String> {
        Ok(())
    }
}

/// Rejects every proof.
pub struct RejectAllVerifierForProtocolTests;

impl ProofVerifier for RejectAllVerifierForProtocolTests {
    fn verify(&self, _: &Task, _: &ProofPayload) -> Result<(), String> {
        Err("rejected by the test verifier".into())
    }
}

/// Collects accepted proofs in memory; can be told to fail like a database
/// that is down.
#[derive(Clone, Default)]
pub struct MemorySinkForTests {
    pub accepted: Arc<Mutex<Vec<ProofAccepted>>>,
    pub failing: Arc<Mutex<bool>>,
}

impl MemorySinkForTests {
    pub fn task_ids(&self) -> Vec<String> {
        self.accepted.lock().map(|v| v.iter().map(|p| p.task.id.clone()).collect()).unwrap_or_default()
    }
}

impl Actor for MemorySinkForTests {
    type Context = Context<Self>;
}

impl Handler<ProofAccepted> for MemorySinkForTests {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: ProofAccepted, _: &mut Self::Context) -> Self::Result {
        if self.failing.lock().map(|f| *f).unwrap_or(false) {
            return Err("database is down".into());
        }
        self.accepted.lock().map_err(|e| e.to_string())?.push(msg);
        Ok(())
    }
}
