//! The sequencer simulator: one tokio task per rollup posts sequences of
//! 1..=N batches of random transfers between the genesis accounts (valid
//! ones mixed with every kind of invalid one), and keeps the native state
//! and the root after every batch, so the devnet knows what each verified
//! root must be.
//!
//! The chain is the only record: on start the simulator replays every
//! posted sequence from the sequencing transactions' calldata with the
//! native executor, so a resumed devnet continues from exactly the state the
//! contract has, whatever happened to the previous process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::DynProvider;
use anyhow::Context;
use rand::{RngExt, SeedableRng};
use tokio::sync::watch;

use crate::chain::bindings::ZkPowRollup;
use crate::chain::root_to_b256;
use crate::chain::watcher::{Poll, Watcher};
use crate::circuit::batch::encode;
use crate::circuit::executor::apply_batch;
use crate::circuit::sample::random_transfers;
use crate::circuit::{Account, Shape, StateTree};

/// What a rollup's history looks like to the native executor.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// `(initNumBatch, finalNewBatch)` of every posted sequence, in order.
    pub sequences: Vec<(u64, u64)>,
    /// The state root after batch `i` (index 0: genesis).
    pub roots: Vec<B256>,
}

impl History {
    pub fn last_batch(&self) -> u64 {
        self.roots.len().saturating_sub(1) as u64
    }

    pub fn root_at(&self, batch: u64) -> Option<B256> {
        self.roots.get(usize::try_from(batch).ok()?).copied()
    }

    /// Sequences whose last batch is at most `last_verified`.
    pub fn verified_sequences(&self, last_verified: u64) -> usize {
        self.sequences.iter().filter(|(_, fin)| *fin <= last_verified).count()
    }
}

/// Rebuilds a rollup's native state from the chain: every `SequenceBatches`
/// event, its batches read from calldata and applied in order. Checks that
/// the result covers the contract's `lastBatch`.
pub async fn replay(
    provider: &DynProvider,
    rollup: Address,
    shape: Shape,
    genesis: &[(u64, Account)],
) -> anyhow::Result<(StateTree, History)> {
    let mut state = StateTree::with_accounts(shape.d, genesis.iter().copied());
    let mut history = History { sequences: Vec::new(), roots: vec![root_to_b256(&state.root())] };
    let watcher = Watcher::new(provider.clone(), vec![rollup], 0).with_max_range(10_000);
    let mut cursor = None;
    loop {
        match watcher.poll(cursor, 0).await.context("reading posted sequences")? {
            Poll::Idle => break,
            Poll::Reorg { .. } => anyhow::bail!("the chain reorganised while it was being replayed"),
            Poll::Progress { sequences, cursor: c } => {
                for s in sequences {
                    anyhow::ensure!(
                        s.init_batch == history.last_batch() + 1,
                        "sequence {}..{} does not follow batch {}",
                        s.init_batch,
                        s.final_batch,
                        history.last_batch()
                    );
                    for b in &s.batches {
                        apply_batch(&mut state, shape, b)
                            .with_context(|| format!("applying a batch of sequence {}", s.init_batch))?;
                        history.roots.push(root_to_b256(&state.root()));
                    }
                    history.sequences.push((s.init_batch, s.final_batch));
                }
                cursor = Some(c);
            }
        }
    }
    let on_chain = ZkPowRollup::new(rollup, provider.clone()).lastBatch().call().await.context("reading lastBatch")?;
    anyhow::ensure!(
        on_chain == history.last_batch(),
        "replayed {} batches but the contract has {on_chain}",
        history.last_batch()
    );
    Ok((state, history))
}

pub struct SimulatorConfig {
    pub rollup: String,
    pub shape: Shape,
    pub address: Address,
    /// Accounts `0..accounts` take part in transfers.
    pub accounts: u32,
    pub max_batches: usize,
    pub invalid_ratio: f64,
    pub interval: Duration,
    pub seed: u64,
}

pub struct Simulator {
    cfg: SimulatorConfig,
    /// Signs with the rollup's sequencer account.
    provider: DynProvider,
    state: StateTree,
    history: Arc<Mutex<History>>,
    rng: rand::rngs::ChaCha20Rng,
}

impl Simulator {
    /// Replays the chain, then is ready to post. `history` is shared with
    /// the progress display.
    pub async fn resume(
        cfg: SimulatorConfig,
        provider: DynProvider,
        genesis: &[(u64, Account)],
        history: Arc<Mutex<History>>,
    ) -> anyhow::Result<Simulator> {
        let (state, replayed) = replay(&provider, cfg.address, cfg.shape, genesis)
            .await
            .with_context(|| format!("rollup {}: replaying posted batches", cfg.rollup))?;
        // Seeded by the position too: a resumed run does not repeat the
        // previous run's transfers.
        let rng = rand::rngs::ChaCha20Rng::seed_from_u64(cfg.seed ^ replayed.last_batch().wrapping_mul(0x9e37_79b9));
        tracing::info!(rollup = %cfg.rollup, batches = replayed.last_batch(), sequences = replayed.sequences.len(), "sequencer resumed from the chain");
        *history.lock().unwrap_or_else(|e| e.into_inner()) = replayed;
        Ok(Simulator { cfg, provider, state, history, rng })
    }

    /// Posts one sequence and waits for its receipt; returns its range.
    pub async fn post_one(&mut self) -> anyhow::Result<(u64, u64)> {
        let n = self.rng.random_range(1..=self.cfg.max_batches.max(1));
        let mut next = self.state.clone();
        let mut batches = Vec::with_capacity(n);
        let mut roots = Vec::with_capacity(n);
        for _ in 0..n {
            let transfers =
                random_transfers(&mut self.rng, self.cfg.shape, &next, self.cfg.accounts, self.cfg.invalid_ratio);
            let bytes = encode(self.cfg.shape, &transfers).context("encoding a batch")?;
            apply_batch(&mut next, self.cfg.shape, &bytes).context("applying a batch")?;
            roots.push(root_to_b256(&next.root()));
            batches.push(Bytes::from(bytes));
        }
        let receipt = ZkPowRollup::new(self.cfg.address, self.provider.clone())
            .sequenceBatches(batches)
            .send()
            .await
            .context("sending sequenceBatches")?
            .get_receipt()
            .await
            .context("waiting for the sequenceBatches receipt")?;
        anyhow::ensure!(receipt.status(), "sequenceBatches reverted in {}", receipt.transaction_hash);
        let event = receipt
            .decoded_log::<ZkPowRollup::SequenceBatches>()
            .context("the sequenceBatches receipt has no SequenceBatches event")?;
        let (init, fin) = (event.initNumBatch, event.finalNewBatch);
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        anyhow::ensure!(
            init == h.last_batch() + 1 && fin == init + n as u64 - 1,
            "posted {init}..{fin} but expected to follow batch {} with {n} batches (another sequencer?)",
            h.last_batch()
        );
        h.sequences.push((init, fin));
        h.roots.extend(roots);
        drop(h);
        self.state = next;
        Ok((init, fin))
    }

    /// Posts a sequence every interval until shutdown. A failed post is
    /// logged and retried at the next tick after re-reading the chain.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>, genesis: Vec<(u64, Account)>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(self.cfg.interval) => {}
            }
            if *shutdown.borrow() {
                return;
            }
            match self.post_one().await {
                Ok((init, fin)) => tracing::debug!(rollup = %self.cfg.rollup, init, fin, "sequence posted"),
                Err(e) => {
                    tracing::warn!(rollup = %self.cfg.rollup, error = %format!("{e:#}"), "posting a sequence failed; re-reading the chain");
                    // The transaction may or may not have landed: the chain decides.
                    match replay(&self.provider, self.cfg.address, self.cfg.shape, &genesis).await {
                        Ok((state, history)) => {
                            self.state = state;
                            *self.history.lock().unwrap_or_else(|e| e.into_inner()) = history;
                        }
                        Err(e) => {
                            tracing::warn!(rollup = %self.cfg.rollup, error = %format!("{e:#}"), "replaying the chain failed")
                        }
                    }
                }
            }
        }
    }
}
