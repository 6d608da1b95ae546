//! The proof manager of one base chain: fills the sender's caches and keeps
//! what the sender sent in order.
//!
//! * `ProofManager` (this module), each poll: follows sent transactions to
//!   their receipts and books rewards and penalties ([`follow`]), scans the
//!   rollups' logs, settles other miners' expired commits, and hands new
//!   final proofs to the sender (`try_fetch_proof_to_send`, [`pending`]).
//!   Its first poll resumes every unfinished submission
//!   (`submit_pending_proofs`).
//! * `Resend` ([`resend`]): the sweep that puts back into the pipeline what
//!   fell out of it.
//! * The head clock: one `eth_blockNumber` per poll for the chain, which
//!   re-arms the stage actors' block timers.
//!
//! [`start_chain`] starts these and the three sender actors
//! ([`crate::aggregator::sender`]). Everything they need to resume is in
//! the database (submissions, the transaction outbox, final artifacts) or
//! on chain (windows, commits), so a restart rebuilds all of it.

pub mod follow;
pub mod pending;
pub mod resend;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use alloy::providers::Provider;
use tokio::sync::watch;

pub use self::follow::TxFollower;
pub use self::pending::{submit_pending_proofs, try_fetch_proof_to_send};
pub use self::resend::Resend;
pub use crate::aggregator::sender::{reveal_call, SenderRollup, MAX_BACKOFF};

use super::pause::PauseSwitch;
use super::sender::{self, Caches, CommitMonitor, HashCommitter, ProofRevealer, SenderCore, Stage};
use crate::chain::txmanager::TxManager;
use crate::config::SenderConfig;
use crate::db::Db;
use crate::metrics;

/// The manager's per-poll work, as a plain struct.
pub struct Manager {
    core: Arc<SenderCore>,
    follower: TxFollower,
    resumed: AtomicBool,
}

impl Manager {
    pub fn new(core: Arc<SenderCore>) -> Self {
        Manager { follower: TxFollower::new(core.clone()), core, resumed: AtomicBool::new(false) }
    }

    /// One poll: resume (first time only), follow sent transactions, then,
    /// unless paused, scan logs, settle others and fetch new proofs.
    pub async fn poll(&self) -> anyhow::Result<()> {
        // A process whose lease term lapsed (deposed, or frozen past it)
        // does nothing until it is replaced by a standby.
        if !self.core.tm.may_act() {
            return Ok(());
        }
        // Receipts first: the resumed submissions are then judged with
        // what the outbox knows now.
        self.follower.follow().await?;
        if !self.resumed.load(Ordering::SeqCst) {
            submit_pending_proofs(&self.core).await?;
            self.resumed.store(true, Ordering::SeqCst);
        }
        if self.core.pause.is_paused() {
            return Ok(());
        }
        self.follower.scan_logs().await?;
        self.follower.settle_others().await?;
        try_fetch_proof_to_send(&self.core).await?;
        Ok(())
    }
}

pub struct ProofManager {
    manager: Arc<Manager>,
}

impl Actor for ProofManager {
    type Context = actix::Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        metrics::sender_actor_started(self.manager.core.chain(), "proof_manager");
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        metrics::sender_actor_stopped(self.manager.core.chain(), "proof_manager");
    }
}

impl Handler<sender::Round> for ProofManager {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: sender::Round, _: &mut Self::Context) -> Self::Result {
        let m = self.manager.clone();
        Box::pin(async move { m.poll().await.map_err(|e| format!("{e:#}")) })
    }
}

/// Starts the proof manager and the proof sender of one chain: the head
/// clock, `ProofManager`, `Resend`, and the three stage actors, all sharing
/// the chain's transaction manager and caches. Call inside an actix system.
pub fn start_chain(
    db: Db,
    tm: TxManager,
    rollups: Vec<SenderRollup>,
    cfg: SenderConfig,
    pause: Arc<PauseSwitch>,
    poll: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let chain = tm.chain().to_string();
    let (head_tx, head) = watch::channel(0u64);
    tracing::info!(chain = %chain, miner = %tm.address(), rollups = rollups.len(), "sender started");
    let core = Arc::new(SenderCore { db, tm: Arc::new(tm), rollups, cfg, pause, caches: Caches::new(&chain), head });
    actix_rt::spawn(clock(core.clone(), head_tx, poll, shutdown.clone()));

    let manager = ProofManager { manager: Arc::new(Manager::new(core.clone())) }.start();
    actix_rt::spawn(poll_manager(manager, core.clone(), poll, shutdown.clone()));
    let resend = Resend::new(core.clone()).start();
    actix_rt::spawn(resend::drive(resend, poll, shutdown.clone()));

    let committer = HashCommitter::new(core.clone()).start();
    actix_rt::spawn(sender::drive(committer, core.clone(), Stage::Commit, poll, shutdown.clone()));
    let monitor = CommitMonitor::new(core.clone()).start();
    actix_rt::spawn(sender::drive(monitor, core.clone(), Stage::Monitor, poll, shutdown.clone()));
    let revealer = ProofRevealer::new(core.clone()).start();
    actix_rt::spawn(sender::drive(revealer, core, Stage::Reveal, poll, shutdown));
}

/// Publishes the chain's head once per poll for the stage actors' block
/// timers (one call for all of them, not one per sequence).
async fn clock(core: Arc<SenderCore>, head: watch::Sender<u64>, poll: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = poll;
    loop {
        match core.tm.provider().get_block_number().await {
            Ok(n) => {
                backoff = poll;
                head.send_if_modified(|h| {
                    let newer = n != *h;
                    *h = n;
                    newer
                });
            }
            Err(e) => {
                metrics::rpc_failed(core.chain(), "eth_blockNumber", &e);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}

/// Polls the manager every `poll`; a failed poll backs off up to
/// [`MAX_BACKOFF`].
async fn poll_manager(
    addr: Addr<ProofManager>,
    core: Arc<SenderCore>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = poll;
    loop {
        match addr.send(sender::Round).await {
            Ok(Ok(())) => backoff = poll,
            Ok(Err(e)) => {
                tracing::warn!(
                    chain = %core.chain(), error = %e, retry_in_ms = backoff.as_millis() as u64, "proof manager poll failed"
                );
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(_) => break,
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}
