//! A bounded pool of proving threads. Async callers await a oneshot while a
//! dedicated thread does the work, so a proof never occupies an async
//! runtime thread, and at most `workers` proofs run at once (each proof
//! already spreads its multi-exponentiations over all cores).
//!
//! The workers are plain OS threads, not a rayon pool: bellman's own
//! parallel sections refuse to wait from inside a rayon worker.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{ProofOutput, ProofRequest, ProverBackend, ProverError};
use crate::circuit::public::PublicInputs;
use crate::circuit::Shape;

type Job = Box<dyn FnOnce(&dyn ProverBackend) + Send>;

#[derive(Clone)]
pub struct ProvingPool {
    backend: Arc<dyn ProverBackend>,
    jobs: mpsc::Sender<Job>,
}

impl ProvingPool {
    pub fn new(backend: Arc<dyn ProverBackend>, workers: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let backend = backend.clone();
            std::thread::Builder::new()
                .name(format!("zkpow-prove-{i}"))
                // Synthesis of large shapes nests deeply; 2 MiB is too little.
                .stack_size(64 << 20)
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(backend.as_ref()),
                        // Every pool handle is gone.
                        Err(_) => return,
                    }
                })?;
        }
        Ok(ProvingPool { backend, jobs: tx })
    }

    pub fn backend(&self) -> &Arc<dyn ProverBackend> {
        &self.backend
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ProverBackend) -> Result<T, ProverError> + Send + 'static,
    ) -> Result<T, ProverError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |backend| {
            // The caller may have given up; nothing to do then.
            let _ = tx.send(f(backend));
        });
        self.jobs.send(job).map_err(|_| ProverError::PoolClosed)?;
        rx.await.map_err(|_| ProverError::PoolClosed)?
    }

    pub async fn prove(&self, req: ProofRequest) -> Result<ProofOutput, ProverError> {
        self.run(move |b| b.prove(&req)).await
    }

    pub async fn verify(&self, shape: Shape, proof: Vec<u8>, public: PublicInputs) -> Result<(), ProverError> {
        self.run(move |b| b.verify(shape, &proof, &public)).await
    }
}
