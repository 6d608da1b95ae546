//! A bounded pool of proving threads. Async callers await a oneshot while a
//! dedicated thread does the work, so a proof never occupies an async
//! runtime thread, and at most `workers` proofs run at once (each proof
//! already spreads its multi-exponentiations over all cores).
//!
//! The workers are plain OS threads, not a rayon pool: bellman's own
//! parallel sections refuse to wait from inside a rayon worker. They share
//! one bounded crossbeam queue (multi-consumer, so no lock around the
//! receiver); callers take a slot before queueing, so a burst of requests
//! waits asynchronously instead of piling witnesses up in memory.

use std::sync::Arc;

use tokio::sync::{oneshot, Semaphore};

use super::{ProverBackend, ProverError};
use crate::circuit::public::PublicInputs;
use crate::circuit::Shape;
use crate::wire::proof::{ProofOutput, ProofRequest};

type Job = Box<dyn FnOnce(&dyn ProverBackend) + Send>;

/// Jobs queued per worker beyond the one it runs.
const QUEUED_PER_WORKER: usize = 2;

#[derive(Clone)]
pub struct ProvingPool {
    backend: Arc<dyn ProverBackend>,
    jobs: crossbeam_channel::Sender<Job>,
    /// One permit per place in `jobs`, held until the job finished.
    slots: Arc<Semaphore>,
}

impl ProvingPool {
    pub fn new(backend: Arc<dyn ProverBackend>, workers: usize) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let capacity = workers * (1 + QUEUED_PER_WORKER);
        let (tx, rx) = crossbeam_channel::bounded::<Job>(capacity);
        for i in 0..workers {
            let rx = rx.clone();
            let backend = backend.clone();
            std::thread::Builder::new()
                .name(format!("zkpow-prove-{i}"))
                // Synthesis of large shapes nests deeply; 2 MiB is too little.
                .stack_size(64 << 20)
                // `recv` fails once every pool handle is gone.
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job(backend.as_ref());
                    }
                })?;
        }
        Ok(ProvingPool { backend, jobs: tx, slots: Arc::new(Semaphore::new(capacity)) })
    }

    pub fn backend(&self) -> &Arc<dyn ProverBackend> {
        &self.backend
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ProverBackend) -> Result<T, ProverError> + Send + 'static,
    ) -> Result<T, ProverError> {
        let slot = self.slots.clone().acquire_owned().await.map_err(|_| ProverError::PoolClosed)?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |backend| {
            let result = f(backend);
            // The slot is free before the caller hears back, so a caller
            // that queues its next job at once finds room.
            drop(slot);
            // The caller may have given up; nothing to do then.
            let _ = tx.send(result);
        });
        // A slot guarantees room, so the queue is never full here.
        self.jobs.try_send(job).map_err(|_| ProverError::PoolClosed)?;
        rx.await.map_err(|_| ProverError::PoolClosed)?
    }

    pub async fn prove(&self, req: ProofRequest) -> Result<ProofOutput, ProverError> {
        self.run(move |b| b.prove(&req)).await
    }

    pub async fn verify(&self, shape: Shape, proof: Vec<u8>, public: PublicInputs) -> Result<(), ProverError> {
        self.run(move |b| b.verify(shape, &proof, &public)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::wire::proof::ShapeKey;

    /// Counts how many verifications run at once; proves nothing.
    #[derive(Default)]
    struct ConcurrencyProbeBackendForPoolTests {
        running: AtomicUsize,
        peak: AtomicUsize,
    }

    impl ProverBackend for ConcurrencyProbeBackendForPoolTests {
        fn name(&self) -> &'static str {
            "probe"
        }
        fn shapes(&self) -> Vec<ShapeKey> {
            Vec::new()
        }
        fn prove(&self, _: &ProofRequest) -> Result<ProofOutput, ProverError> {
            Err(ProverError::Invalid("not a prover".into()))
        }
        fn verify(&self, _: Shape, _: &[u8], _: &PublicInputs) -> Result<(), ProverError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            // Hold on until a second job runs too (or a while passed), so
            // the peak shows what the pool allows, not how the threads were
            // scheduled on a loaded machine.
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while self.running.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.peak.fetch_max(self.running.load(Ordering::SeqCst), Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn public() -> PublicInputs {
        let z = crate::circuit::Fr::from(0u64);
        PublicInputs { domain: z, batch_num: 1, old_root: z, new_root: z, data_hash_hi: z, data_hash_lo: z, miner: z }
    }

    #[tokio::test]
    async fn runs_at_most_workers_at_once_and_queues_the_rest() {
        let probe = Arc::new(ConcurrencyProbeBackendForPoolTests::default());
        let pool = ProvingPool::new(probe.clone(), 2).unwrap();
        // Far more requests than queue slots: the surplus waits for a slot.
        let calls: Vec<_> = (0..40)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.verify(Shape::TEST, Vec::new(), public()).await })
            })
            .collect();
        for c in calls {
            c.await.unwrap().unwrap();
        }
        assert_eq!(probe.peak.load(Ordering::SeqCst), 2);
        assert_eq!(pool.slots.available_permits(), 2 * (1 + QUEUED_PER_WORKER), "every slot came back");
    }
}
