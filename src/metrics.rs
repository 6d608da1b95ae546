//! Prometheus metrics. This module owns the one process-wide registry
//! ([`get`]), the declaration of every metric family the daemon exports
//! ([`Metrics::new`] is the only place a metric is defined), the closed sets
//! of label values, and the recording functions the rest of the daemon
//! calls. `GET /metrics` ([`crate::api::metrics`]) renders it with [`render`].
//!
//! Conventions:
//! * names are `zkpow_<subsystem>_<name>_<unit>`; counters end in `_total`,
//!   durations are `_seconds` histograms, amounts name their unit (`_wei`,
//!   `_gas`) and block numbers end in `_block` or `_blocks`;
//! * label values come from the small closed sets below ([`TxPurpose`],
//!   [`SequenceStage`], [`RejectReason`], ...) or from configuration (rollup
//!   and chain names, proof shapes), never from ids, hashes, addresses or
//!   error messages, so the number of series stays bounded;
//! * every family is registered when the registry is first used, and
//!   [`init`] creates the series of every label combination the
//!   configuration makes known, so a scrape lists every family with zeros
//!   before anything happened (and `rate()`/`increase()` work from the
//!   first sample).
//!
//! Recording never fails and never panics: negative or non-finite amounts
//! and durations are dropped, block numbers beyond `i64::MAX` saturate.
//! README.md ("Metrics") lists the families; a unit test keeps that table,
//! the dashboards and the alert rules in step with the declarations here.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use prometheus::core::Collector;
use prometheus::{
    CounterVec, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::circuit::Shape;
use crate::config::Config;
use crate::wire::task::TaskKind;

/// Buckets of the duration histograms (seconds): from 10 ms (an aggregate
/// merge, a verification) to four hours (a large batch proof on a slow
/// prover, or a sequence's whole way from posting to verification).
pub const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
    7200.0, 14400.0,
];

/// Buckets of the database histograms (seconds): 0.5 ms to 10 s.
pub const DB_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyType {
    Counter,
    Gauge,
    Histogram,
}

impl FamilyType {
    /// The word the text format uses in `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyType::Counter => "counter",
            FamilyType::Gauge => "gauge",
            FamilyType::Histogram => "histogram",
        }
    }
}

/// A declared metric family: what the registry exports, whether or not it
/// has samples yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub kind: FamilyType,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

/// What an on-chain transaction of the sender is for (the outbox's own enum).
pub use crate::wire::tx::TxPurpose;

/// A stage of a sequence's way from posting to verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SequenceStage {
    /// From posted (seen by the watcher) to the final proof stored.
    Proving,
    /// From the commit to the end of T1, when the reveal may be sent.
    WaitingT1,
    /// From sending the reveal to its confirmation.
    Revealing,
}

impl SequenceStage {
    pub const ALL: &'static [SequenceStage] =
        &[SequenceStage::Proving, SequenceStage::WaitingT1, SequenceStage::Revealing];

    pub fn as_str(self) -> &'static str {
        match self {
            SequenceStage::Proving => "proving",
            SequenceStage::WaitingT1 => "waiting_t1",
            SequenceStage::Revealing => "revealing",
        }
    }
}

/// Why the dispatcher refused a proof a prover submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The prover is not registered (any more).
    UnknownProver,
    /// No such task.
    UnknownTask,
    /// The task was already done (a duplicate or a lost race).
    AlreadyDone,
    /// The payload does not decode as the task kind's result.
    Malformed,
    /// The proof is for other batches than the task's.
    WrongTask,
    /// The proof does not verify, or proves other public inputs.
    Invalid,
}

impl RejectReason {
    pub const ALL: &'static [RejectReason] = &[
        RejectReason::UnknownProver,
        RejectReason::UnknownTask,
        RejectReason::AlreadyDone,
        RejectReason::Malformed,
        RejectReason::WrongTask,
        RejectReason::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::UnknownProver => "unknown_prover",
            RejectReason::UnknownTask => "unknown_task",
            RejectReason::AlreadyDone => "already_done",
            RejectReason::Malformed => "malformed",
            RejectReason::WrongTask => "wrong_task",
            RejectReason::Invalid => "invalid",
        }
    }
}

/// Why a lease ended early at the holder's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnReason {
    /// The prover reported that it could not prove the task (counts an attempt).
    Failed,
    /// The prover handed the task back unfinished, or was quarantined.
    Released,
}

impl ReturnReason {
    pub const ALL: &'static [ReturnReason] = &[ReturnReason::Failed, ReturnReason::Released];

    pub fn as_str(self) -> &'static str {
        match self {
            ReturnReason::Failed => "failed",
            ReturnReason::Released => "released",
        }
    }
}

/// Whether an RPC failure is worth retrying as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcErrorKind {
    /// Connection, timeout, rate limit, null response: retried with backoff.
    Transient,
    /// An error answer of the node, or a response that does not decode:
    /// retrying the same request will not help; an operator should look.
    Fatal,
}

impl RpcErrorKind {
    pub const ALL: &'static [RpcErrorKind] = &[RpcErrorKind::Transient, RpcErrorKind::Fatal];

    pub fn as_str(self) -> &'static str {
        match self {
            RpcErrorKind::Transient => "transient",
            RpcErrorKind::Fatal => "fatal",
        }
    }

    /// Classifies a transport-level error of an alloy provider.
    pub fn of(e: &alloy::transports::TransportError) -> Self {
        use alloy::transports::RpcError;
        match e {
            RpcError::Transport(_) | RpcError::NullResp => RpcErrorKind::Transient,
            RpcError::ErrorResp(payload) if payload.is_retry_err() => RpcErrorKind::Transient,
            _ => RpcErrorKind::Fatal,
        }
    }

    /// Classifies the error of a contract call: its transport part as
    /// [`RpcErrorKind::of`], anything else (an undecodable answer) as fatal.
    pub fn of_contract(e: &alloy::contract::Error) -> Self {
        match e {
            alloy::contract::Error::TransportError(t) => RpcErrorKind::of(t),
            _ => RpcErrorKind::Fatal,
        }
    }
}

/// The JSON-RPC methods whose error series exist from the start. Any other
/// method name may be recorded too; it appears with its first error.
pub const RPC_METHODS: &[&str] = &[
    "eth_blockNumber",
    "eth_getBlockByNumber",
    "eth_getLogs",
    "eth_getTransactionByHash",
    "eth_call",
    "eth_estimateGas",
    "eth_sendRawTransaction",
    "eth_getTransactionReceipt",
    "eth_getTransactionCount",
];

/// Queue states the depth gauge reports (done tasks are not queue depth).
pub const QUEUE_STATES: &[&str] = &["queued", "leased", "failed"];

/// The database operation label of [`crate::db::Db::run`] and
/// [`crate::db::Db::with_conn`]; named operations use `Db::run_op`.
pub const DB_OP_DEFAULT: &str = "query";

/// Every metric the daemon exports, as typed handles. Prefer the recording
/// functions of this module; the handles are public for the rare caller that
/// needs something they do not offer.
pub struct Metrics {
    registry: Registry,
    families: Vec<Family>,

    pub build_info: IntGaugeVec,

    pub tasks_created_total: IntCounterVec,
    pub tasks_leased_total: IntCounterVec,
    pub tasks_completed_total: IntCounterVec,
    pub tasks_failed_total: IntCounterVec,
    pub tasks_expired_total: IntCounterVec,
    pub tasks_returned_total: IntCounterVec,
    pub tasks_retried_total: IntCounterVec,
    pub tasks_queue_depth: IntGaugeVec,
    pub tasks_in_memory: IntGauge,
    pub tasks_dispatch_latency_seconds: HistogramVec,
    pub tasks_proving_duration_seconds: HistogramVec,
    pub proofs_rejected_total: IntCounterVec,

    pub provers_connected: IntGauge,
    pub provers_working: IntGauge,
    pub provers_quarantined: IntGauge,

    pub actors_live: IntGaugeVec,
    pub generator_restarts_total: IntCounterVec,
    pub retention_pruned_sequences_total: IntCounter,

    pub sequence_latency_seconds: HistogramVec,
    pub sequence_stage_duration_seconds: HistogramVec,
    pub submission_commits_total: IntCounterVec,
    pub submission_reveals_total: IntCounterVec,
    pub submission_windows_missed_total: IntCounterVec,
    pub submission_window_resets_total: IntCounterVec,
    pub submission_reward_wei_total: CounterVec,
    pub submission_penalty_wei_total: CounterVec,

    pub tx_sent_total: IntCounterVec,
    pub tx_confirmed_total: IntCounterVec,
    pub tx_replaced_total: IntCounterVec,
    pub tx_reverted_total: IntCounterVec,
    pub tx_gas_used_total: IntCounterVec,

    pub chain_head_block: IntGaugeVec,
    pub chain_processed_block: IntGaugeVec,
    pub chain_lag_blocks: IntGaugeVec,
    pub chain_rpc_errors_total: IntCounterVec,
    pub rollup_last_sequenced_batch: IntGaugeVec,
    pub rollup_last_verified_batch: IntGaugeVec,

    pub db_query_duration_seconds: HistogramVec,
    pub db_pool_wait_seconds: Histogram,

    pub failover_active: IntGauge,
    pub failover_epoch: IntGauge,
    pub failover_takeovers_total: IntCounter,
    pub failover_renew_failures_total: IntCounter,

    pub sender_cache_depth: IntGaugeVec,
    pub sender_actors: IntGaugeVec,
}

/// Declares families into a registry and keeps the list of declarations.
struct Declare {
    registry: Registry,
    families: Vec<Family>,
}

impl Declare {
    fn add<C: Collector + Clone + 'static>(&mut self, family: Family, collector: C) -> C {
        // Names are fixed in this file and unique; the unit tests register
        // every family, so a clash cannot reach a running daemon.
        self.registry.register(Box::new(collector.clone())).expect("metric families have unique, valid names");
        self.families.push(family);
        collector
    }

    fn counter(&mut self, name: &'static str, help: &'static str, labels: &'static [&'static str]) -> IntCounterVec {
        let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
        self.add(Family { name, kind: FamilyType::Counter, help, labels }, c)
    }

    fn counter_plain(&mut self, name: &'static str, help: &'static str) -> IntCounter {
        let c = IntCounter::with_opts(Opts::new(name, help)).expect("valid counter");
        self.add(Family { name, kind: FamilyType::Counter, help, labels: &[] }, c)
    }

    fn counter_f64(&mut self, name: &'static str, help: &'static str, labels: &'static [&'static str]) -> CounterVec {
        let c = CounterVec::new(Opts::new(name, help), labels).expect("valid counter");
        self.add(Family { name, kind: FamilyType::Counter, help, labels }, c)
    }

    fn gauge_vec(&mut self, name: &'static str, help: &'static str, labels: &'static [&'static str]) -> IntGaugeVec {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
        self.add(Family { name, kind: FamilyType::Gauge, help, labels }, g)
    }

    fn gauge(&mut self, name: &'static str, help: &'static str) -> IntGauge {
        let g = IntGauge::with_opts(Opts::new(name, help)).expect("valid gauge");
        self.add(Family { name, kind: FamilyType::Gauge, help, labels: &[] }, g)
    }

    fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &[f64],
    ) -> HistogramVec {
        let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)
            .expect("valid histogram");
        self.add(Family { name, kind: FamilyType::Histogram, help, labels }, h)
    }

    fn histogram_plain(&mut self, name: &'static str, help: &'static str, buckets: &[f64]) -> Histogram {
        let h =
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())).expect("valid histogram");
        self.add(Family { name, kind: FamilyType::Histogram, help, labels: &[] }, h)
    }
}

impl Metrics {
    /// A registry with every family declared and `zkpow_build_info` set.
    /// The daemon uses the process-wide one ([`get`]).
    pub fn new() -> Self {
        let mut d = Declare { registry: Registry::new(), families: Vec::new() };
        let m = Metrics {
            build_info: d.gauge_vec(
                "zkpow_build_info",
                "Always 1; the labels tell the version and the commit the daemon was built from.",
                &["version", "git_sha"],
            ),

            tasks_created_total: d.counter(
                "zkpow_tasks_created_total",
                "Proof tasks added to the dispatcher's queue (re-enqueueing a known task does not count).",
                &["kind"],
            ),
            tasks_leased_total: d.counter(
                "zkpow_tasks_leased_total",
                "Leases handed to provers (a prover re-claiming its own lease does not count).",
                &["kind"],
            ),
            tasks_completed_total: d.counter(
                "zkpow_tasks_completed_total",
                "Tasks completed by an accepted (verified and stored) proof.",
                &["kind"],
            ),
            tasks_failed_total: d.counter(
                "zkpow_tasks_failed_total",
                "Tasks that reached the attempt cap; each gets another round of attempts after a backoff.",
                &["kind"],
            ),
            tasks_expired_total: d.counter(
                "zkpow_tasks_expired_total",
                "Leases that expired without a heartbeat.",
                &["kind"],
            ),
            tasks_returned_total: d.counter(
                "zkpow_tasks_returned_total",
                "Leases the holder ended early: reported failure (reason=failed) or handed back (reason=released).",
                &["kind", "reason"],
            ),
            tasks_retried_total: d.counter(
                "zkpow_tasks_retried_total",
                "Failed tasks given another round of attempts after their backoff.",
                &["kind"],
            ),
            tasks_queue_depth: d.gauge_vec(
                "zkpow_tasks_queue_depth",
                "Tasks in the dispatcher by state (queued, leased, failed).",
                &["kind", "state"],
            ),
            tasks_in_memory: d.gauge(
                "zkpow_tasks_in_memory",
                "Tasks the dispatcher holds in memory in any state (done tasks are dropped once stored).",
            ),
            tasks_dispatch_latency_seconds: d.histogram(
                "zkpow_tasks_dispatch_latency_seconds",
                "Time from a task entering the queue to its first lease.",
                &["kind"],
                DURATION_BUCKETS,
            ),
            tasks_proving_duration_seconds: d.histogram(
                "zkpow_tasks_proving_duration_seconds",
                "Time from a lease to the prover's accepted proof, measured at the dispatcher.",
                &["kind", "shape"],
                DURATION_BUCKETS,
            ),
            proofs_rejected_total: d.counter(
                "zkpow_proofs_rejected_total",
                "Proof submissions the dispatcher refused, by reason.",
                &["reason"],
            ),

            provers_connected: d
                .gauge("zkpow_provers_connected", "Registered provers seen within the connection timeout."),
            provers_working: d.gauge("zkpow_provers_working", "Provers holding a lease."),
            provers_quarantined: d
                .gauge("zkpow_provers_quarantined", "Provers in quarantine for returning invalid proofs."),

            actors_live: d.gauge_vec(
                "zkpow_actors_live",
                "Live actors of the aggregator by kind (generator, supervisor, batch_proof, aggregation, final, ...).",
                &["kind"],
            ),
            generator_restarts_total: d.counter(
                "zkpow_generator_restarts_total",
                "Proof generator children (and supervisor plans) restarted after a failure, by kind.",
                &["kind"],
            ),
            retention_pruned_sequences_total: d.counter_plain(
                "zkpow_retention_pruned_sequences_total",
                "Settled sequences whose proofs and transaction bytes were dropped from the database.",
            ),

            sequence_latency_seconds: d.histogram(
                "zkpow_sequence_latency_seconds",
                "Time from a sequence being posted (seen by the watcher) to its verification on chain.",
                &["rollup"],
                DURATION_BUCKETS,
            ),
            sequence_stage_duration_seconds: d.histogram(
                "zkpow_sequence_stage_duration_seconds",
                "Time a sequence spent in a stage: proving, waiting_t1 (commit to end of T1), revealing.",
                &["rollup", "stage"],
                DURATION_BUCKETS,
            ),
            submission_commits_total: d.counter(
                "zkpow_submission_commits_total",
                "Proof hashes committed on chain (confirmed submitProofHash).",
                &["rollup"],
            ),
            submission_reveals_total: d.counter(
                "zkpow_submission_reveals_total",
                "Proofs revealed on chain (confirmed verifyBatches).",
                &["rollup"],
            ),
            submission_windows_missed_total: d.counter(
                "zkpow_submission_windows_missed_total",
                "Commit or reveal windows that closed before our transaction landed.",
                &["rollup"],
            ),
            submission_window_resets_total: d.counter(
                "zkpow_submission_window_resets_total",
                "Submission windows that reset because nobody revealed in time.",
                &["rollup"],
            ),
            submission_reward_wei_total: d.counter_f64(
                "zkpow_submission_reward_wei_total",
                "Rewards received, in wei (a float counter).",
                &["rollup"],
            ),
            submission_penalty_wei_total: d.counter_f64(
                "zkpow_submission_penalty_wei_total",
                "Penalties taken from our deposit, in wei.",
                &["rollup"],
            ),

            tx_sent_total: d.counter(
                "zkpow_tx_sent_total",
                "Transactions broadcast, replacements included.",
                &["chain", "purpose"],
            ),
            tx_confirmed_total: d.counter(
                "zkpow_tx_confirmed_total",
                "Transactions mined successfully.",
                &["chain", "purpose"],
            ),
            tx_replaced_total: d.counter(
                "zkpow_tx_replaced_total",
                "Transactions replaced by a fee bump.",
                &["chain", "purpose"],
            ),
            tx_reverted_total: d.counter(
                "zkpow_tx_reverted_total",
                "Transactions mined but reverted.",
                &["chain", "purpose"],
            ),
            tx_gas_used_total: d.counter(
                "zkpow_tx_gas_used_total",
                "Gas used by mined transactions, reverted ones included.",
                &["chain", "purpose"],
            ),

            chain_head_block: d.gauge_vec(
                "zkpow_chain_head_block",
                "Latest block number of the chain's RPC node.",
                &["chain"],
            ),
            chain_processed_block: d.gauge_vec(
                "zkpow_chain_processed_block",
                "Last block the watcher fully processed (its persisted cursor).",
                &["chain"],
            ),
            chain_lag_blocks: d.gauge_vec(
                "zkpow_chain_lag_blocks",
                "Head minus processed block; includes the configured confirmations.",
                &["chain"],
            ),
            chain_rpc_errors_total: d.counter(
                "zkpow_chain_rpc_errors_total",
                "Failed RPC calls by JSON-RPC method and kind (transient: retried; fatal: needs a look).",
                &["chain", "method", "kind"],
            ),
            rollup_last_sequenced_batch: d.gauge_vec(
                "zkpow_rollup_last_sequenced_batch",
                "Last batch number of the newest sequence the watcher saw posted (0 until one is seen after start).",
                &["rollup"],
            ),
            rollup_last_verified_batch: d.gauge_vec(
                "zkpow_rollup_last_verified_batch",
                "The rollup contract's lastVerifiedBatch as last read.",
                &["rollup"],
            ),

            db_query_duration_seconds: d.histogram(
                "zkpow_db_query_duration_seconds",
                "Time a database operation held its connection, by operation.",
                &["op"],
                DB_BUCKETS,
            ),
            db_pool_wait_seconds: d.histogram_plain(
                "zkpow_db_pool_wait_seconds",
                "Time spent waiting for a pooled database connection.",
                DB_BUCKETS,
            ),

            failover_active: d.gauge(
                "zkpow_failover_active",
                "1 while this process is the miner's active aggregator (it holds the lease, or is a SQLite database's only user); 0 while it stands by.",
            ),
            failover_epoch: d.gauge(
                "zkpow_failover_epoch",
                "Epoch of the aggregator lease this process holds (0: it holds none, or the database is SQLite).",
            ),
            failover_takeovers_total: d.counter_plain(
                "zkpow_failover_takeovers_total",
                "Times this process took the aggregator lease over from another process.",
            ),
            failover_renew_failures_total: d.counter_plain(
                "zkpow_failover_renew_failures_total",
                "Renewals of the aggregator lease that failed (the database did not answer); the term lapses if they go on.",
            ),

            sender_cache_depth: d.gauge_vec(
                "zkpow_sender_cache_depth",
                "Sequences in each of the sender's priority caches (final_proof_msg: to commit, monit_ph_tx: commit in flight or waiting for T2, proof_hash: to reveal, claim or settle).",
                &["chain", "cache"],
            ),
            sender_actors: d.gauge_vec(
                "zkpow_sender_actors",
                "Live actors of the proof manager and sender, by kind (hash_committer, commit_monitor, proof_revealer, proof_manager, resend).",
                &["chain", "kind"],
            ),

            registry: d.registry,
            families: d.families,
        };
        m.build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), env!("BUILD_GIT_SHA")]).set(1);
        m.db_query_duration_seconds.with_label_values(&[DB_OP_DEFAULT]);
        m
    }

    /// Every declared family, in declaration order.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Creates the (zero) series of every label combination known from the
    /// given rollups, chains and shapes, plus the closed label sets.
    pub fn touch(&self, rollups: &[&str], chains: &[&str], shapes: &[Shape]) {
        for kind in GENERATOR_ACTORS {
            self.actors_live.with_label_values(&[kind]);
            self.generator_restarts_total.with_label_values(&[kind]);
        }
        for kind in TaskKind::ALL {
            let k = kind.as_str();
            for c in [
                &self.tasks_created_total,
                &self.tasks_leased_total,
                &self.tasks_completed_total,
                &self.tasks_failed_total,
                &self.tasks_expired_total,
                &self.tasks_retried_total,
            ] {
                c.with_label_values(&[k]);
            }
            for r in ReturnReason::ALL {
                self.tasks_returned_total.with_label_values(&[k, r.as_str()]);
            }
            for s in QUEUE_STATES {
                self.tasks_queue_depth.with_label_values(&[k, s]);
            }
            self.tasks_dispatch_latency_seconds.with_label_values(&[k]);
            for shape in shapes {
                self.tasks_proving_duration_seconds.with_label_values(&[k, &shape.to_string()]);
            }
        }
        for r in RejectReason::ALL {
            self.proofs_rejected_total.with_label_values(&[r.as_str()]);
        }
        for &rollup in rollups {
            self.sequence_latency_seconds.with_label_values(&[rollup]);
            for s in SequenceStage::ALL {
                self.sequence_stage_duration_seconds.with_label_values(&[rollup, s.as_str()]);
            }
            for c in [
                &self.submission_commits_total,
                &self.submission_reveals_total,
                &self.submission_windows_missed_total,
                &self.submission_window_resets_total,
            ] {
                c.with_label_values(&[rollup]);
            }
            self.submission_reward_wei_total.with_label_values(&[rollup]);
            self.submission_penalty_wei_total.with_label_values(&[rollup]);
            self.rollup_last_sequenced_batch.with_label_values(&[rollup]);
            self.rollup_last_verified_batch.with_label_values(&[rollup]);
        }
        for &chain in chains {
            for p in TxPurpose::ALL {
                for c in [
                    &self.tx_sent_total,
                    &self.tx_confirmed_total,
                    &self.tx_replaced_total,
                    &self.tx_reverted_total,
                    &self.tx_gas_used_total,
                ] {
                    c.with_label_values(&[chain, p.as_str()]);
                }
            }
            self.chain_head_block.with_label_values(&[chain]);
            self.chain_processed_block.with_label_values(&[chain]);
            self.chain_lag_blocks.with_label_values(&[chain]);
            for cache in SENDER_CACHES {
                self.sender_cache_depth.with_label_values(&[chain, cache]);
            }
            for kind in SENDER_ACTORS {
                self.sender_actors.with_label_values(&[chain, kind]);
            }
            for m in RPC_METHODS {
                for k in RpcErrorKind::ALL {
                    self.chain_rpc_errors_total.with_label_values(&[chain, m, k.as_str()]);
                }
            }
        }
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// Creates the series the configuration makes known (rollups, chains,
/// shapes). Called once when the aggregator starts; calling it again is
/// harmless.
pub fn init(cfg: &Config) {
    let rollups: Vec<&str> = cfg.rollups.iter().map(|r| r.name.as_str()).collect();
    let chains: Vec<&str> = cfg.chains.iter().map(|c| c.name.as_str()).collect();
    let shapes: Vec<Shape> = cfg.rollups.iter().map(|r| r.shape).collect::<BTreeSet<_>>().into_iter().collect();
    get().touch(&rollups, &chains, &shapes);
}

/// The process-wide registry in the text format (for `GET /metrics`).
pub fn render() -> Result<String, prometheus::Error> {
    get().render()
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Seconds in `ms` milliseconds.
pub fn ms_to_secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn observe(h: &HistogramVec, labels: &[&str], secs: f64) {
    if secs.is_finite() && secs >= 0.0 {
        h.with_label_values(labels).observe(secs);
    }
}

fn add_f64(c: &CounterVec, labels: &[&str], v: f64) {
    if v.is_finite() && v > 0.0 {
        c.with_label_values(labels).inc_by(v);
    }
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

// ---- the proof generator ----------------------------------------------------

/// The generator's actor kinds, exported at zero from the start.
const GENERATOR_ACTORS: [&str; 5] = ["generator", "supervisor", "batch_proof", "aggregation", "final"];

/// An actor of `kind` started; pair with [`actor_stopped`].
pub fn actor_started(kind: &'static str) {
    get().actors_live.with_label_values(&[kind]).inc();
}

pub fn actor_stopped(kind: &'static str) {
    get().actors_live.with_label_values(&[kind]).dec();
}

/// A failed child of kind `kind` (or a supervisor's plan) is retried.
pub fn generator_restart(kind: &'static str) {
    get().generator_restarts_total.with_label_values(&[kind]).inc();
}

/// `n` settled sequences were pruned.
pub fn retention_pruned(n: usize) {
    get().retention_pruned_sequences_total.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
}

// ---- the dispatcher -------------------------------------------------------

pub fn task_created(kind: TaskKind) {
    get().tasks_created_total.with_label_values(&[kind.as_str()]).inc();
}

pub fn task_leased(kind: TaskKind) {
    get().tasks_leased_total.with_label_values(&[kind.as_str()]).inc();
}

pub fn task_completed(kind: TaskKind) {
    get().tasks_completed_total.with_label_values(&[kind.as_str()]).inc();
}

pub fn task_failed(kind: TaskKind) {
    get().tasks_failed_total.with_label_values(&[kind.as_str()]).inc();
}

pub fn task_retried(kind: TaskKind) {
    get().tasks_retried_total.with_label_values(&[kind.as_str()]).inc();
}

pub fn tasks_in_memory(n: usize) {
    get().tasks_in_memory.set(i64::try_from(n).unwrap_or(i64::MAX));
}

pub fn task_expired(kind: TaskKind) {
    get().tasks_expired_total.with_label_values(&[kind.as_str()]).inc();
}

pub fn task_returned(kind: TaskKind, reason: ReturnReason) {
    get().tasks_returned_total.with_label_values(&[kind.as_str(), reason.as_str()]).inc();
}

/// Sets the depth gauges of one kind.
pub fn queue_depth(kind: TaskKind, queued: usize, leased: usize, failed: usize) {
    let g = &get().tasks_queue_depth;
    for (state, n) in [("queued", queued), ("leased", leased), ("failed", failed)] {
        g.with_label_values(&[kind.as_str(), state]).set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Created → first lease.
pub fn dispatch_latency(kind: TaskKind, secs: f64) {
    observe(&get().tasks_dispatch_latency_seconds, &[kind.as_str()], secs);
}

/// Lease → accepted proof.
pub fn proving_duration(kind: TaskKind, shape: Shape, secs: f64) {
    observe(&get().tasks_proving_duration_seconds, &[kind.as_str(), &shape.to_string()], secs);
}

pub fn proof_rejected(reason: RejectReason) {
    get().proofs_rejected_total.with_label_values(&[reason.as_str()]).inc();
}

pub fn provers(connected: usize, working: usize, quarantined: usize) {
    let m = get();
    m.provers_connected.set(i64::try_from(connected).unwrap_or(i64::MAX));
    m.provers_working.set(i64::try_from(working).unwrap_or(i64::MAX));
    m.provers_quarantined.set(i64::try_from(quarantined).unwrap_or(i64::MAX));
}

// ---- sequences and the sender ---------------------------------------------

/// A sequence was verified on chain `secs` after it was posted.
pub fn sequence_verified(rollup: &str, secs: f64) {
    observe(&get().sequence_latency_seconds, &[rollup], secs);
}

/// A sequence spent `secs` in `stage`.
pub fn sequence_stage(rollup: &str, stage: SequenceStage, secs: f64) {
    observe(&get().sequence_stage_duration_seconds, &[rollup, stage.as_str()], secs);
}

/// Our commit (`submitProofHash`) was confirmed.
pub fn commit(rollup: &str) {
    get().submission_commits_total.with_label_values(&[rollup]).inc();
}

/// Our reveal (`verifyBatches`) was confirmed.
pub fn reveal(rollup: &str) {
    get().submission_reveals_total.with_label_values(&[rollup]).inc();
}

/// A commit or reveal window closed before our transaction landed.
pub fn window_missed(rollup: &str) {
    get().submission_windows_missed_total.with_label_values(&[rollup]).inc();
}

/// A submission window was reset (nobody revealed in time).
pub fn window_reset(rollup: &str) {
    get().submission_window_resets_total.with_label_values(&[rollup]).inc();
}

/// A reward of `wei` was received (e.g. `f64::from(amount)` of a `U256`).
/// Negative or non-finite amounts are ignored.
pub fn reward_wei(rollup: &str, wei: f64) {
    add_f64(&get().submission_reward_wei_total, &[rollup], wei);
}

/// A penalty of `wei` was taken from our deposit.
pub fn penalty_wei(rollup: &str, wei: f64) {
    add_f64(&get().submission_penalty_wei_total, &[rollup], wei);
}

/// A transaction was broadcast (a fee-bumped replacement counts again).
pub fn tx_sent(chain: &str, purpose: TxPurpose) {
    get().tx_sent_total.with_label_values(&[chain, purpose.as_str()]).inc();
}

/// A transaction was mined successfully, using `gas_used`.
pub fn tx_confirmed(chain: &str, purpose: TxPurpose, gas_used: u64) {
    let m = get();
    m.tx_confirmed_total.with_label_values(&[chain, purpose.as_str()]).inc();
    m.tx_gas_used_total.with_label_values(&[chain, purpose.as_str()]).inc_by(gas_used);
}

/// A pending transaction was replaced by a fee bump.
pub fn tx_replaced(chain: &str, purpose: TxPurpose) {
    get().tx_replaced_total.with_label_values(&[chain, purpose.as_str()]).inc();
}

/// A transaction was mined but reverted, using `gas_used`.
pub fn tx_reverted(chain: &str, purpose: TxPurpose, gas_used: u64) {
    let m = get();
    m.tx_reverted_total.with_label_values(&[chain, purpose.as_str()]).inc();
    m.tx_gas_used_total.with_label_values(&[chain, purpose.as_str()]).inc_by(gas_used);
}

// ---- chains ---------------------------------------------------------------

fn set_lag(chain: &str) {
    let m = get();
    let head = m.chain_head_block.with_label_values(&[chain]).get();
    let processed = m.chain_processed_block.with_label_values(&[chain]).get();
    if head > 0 && processed > 0 {
        m.chain_lag_blocks.with_label_values(&[chain]).set(head.saturating_sub(processed).max(0));
    }
}

/// The chain's latest block as its RPC node reported it.
pub fn chain_head(chain: &str, block: u64) {
    get().chain_head_block.with_label_values(&[chain]).set(as_i64(block));
    set_lag(chain);
}

/// The watcher's persisted cursor.
pub fn chain_processed_block(chain: &str, block: u64) {
    get().chain_processed_block.with_label_values(&[chain]).set(as_i64(block));
    set_lag(chain);
}

/// An RPC call failed. `method` is the JSON-RPC method name.
pub fn rpc_error(chain: &str, method: &str, kind: RpcErrorKind) {
    get().chain_rpc_errors_total.with_label_values(&[chain, method, kind.as_str()]).inc();
}

/// [`rpc_error`] for a provider error, classified by [`RpcErrorKind::of`].
pub fn rpc_failed(chain: &str, method: &str, e: &alloy::transports::TransportError) {
    rpc_error(chain, method, RpcErrorKind::of(e));
}

/// [`rpc_error`] for a failed contract call (`eth_call`).
pub fn contract_call_failed(chain: &str, e: &alloy::contract::Error) {
    rpc_error(chain, "eth_call", RpcErrorKind::of_contract(e));
}

/// The last batch of a sequence the watcher saw posted.
pub fn rollup_last_sequenced_batch(rollup: &str, batch: u64) {
    get().rollup_last_sequenced_batch.with_label_values(&[rollup]).set(as_i64(batch));
}

/// The contract's `lastVerifiedBatch`.
pub fn rollup_last_verified_batch(rollup: &str, batch: u64) {
    get().rollup_last_verified_batch.with_label_values(&[rollup]).set(as_i64(batch));
}

// ---- the database ---------------------------------------------------------

/// A database operation held its connection for `secs`.
pub fn db_query(op: &str, secs: f64) {
    observe(&get().db_query_duration_seconds, &[op], secs);
}

/// A caller waited `secs` for a pooled connection.
pub fn db_pool_wait(secs: f64) {
    if secs.is_finite() && secs >= 0.0 {
        get().db_pool_wait_seconds.observe(secs);
    }
}

// ---- failover ------------------------------------------------------------

/// This process became active (with the lease's `epoch`; 0 on SQLite) or
/// stands by.
pub fn failover_role(active: bool, epoch: i64) {
    get().failover_active.set(i64::from(active));
    get().failover_epoch.set(if active { epoch } else { 0 });
}

pub fn failover_takeover() {
    get().failover_takeovers_total.inc();
}

pub fn failover_renew_failed() {
    get().failover_renew_failures_total.inc();
}

// ---- the proof manager and sender's actors --------------------------------

/// The `cache` label values: the sender's three priority caches.
pub const SENDER_CACHES: &[&str] = &["final_proof_msg", "monit_ph_tx", "proof_hash"];

/// The `kind` label values of `zkpow_sender_actors`.
pub const SENDER_ACTORS: &[&str] = &["hash_committer", "commit_monitor", "proof_revealer", "proof_manager", "resend"];

/// `cache` of `chain` holds `depth` sequences.
pub fn sender_cache_depth(chain: &str, cache: &str, depth: usize) {
    get().sender_cache_depth.with_label_values(&[chain, cache]).set(i64::try_from(depth).unwrap_or(i64::MAX));
}

/// An actor of the proof manager or sender started.
pub fn sender_actor_started(chain: &str, kind: &str) {
    get().sender_actors.with_label_values(&[chain, kind]).inc();
}

/// An actor of the proof manager or sender stopped.
pub fn sender_actor_stopped(chain: &str, kind: &str) {
    get().sender_actors.with_label_values(&[chain, kind]).dec();
}

/// `zkpow_`-prefixed metric names a text (a dashboard, a rule file) refers
/// to, with the `_bucket`, `_sum` and `_count` series of histograms reduced
/// to the family name when `histograms` holds it.
pub fn referenced_names(text: &str, histograms: &BTreeSet<&str>) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let is_name = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut out = BTreeSet::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find("zkpow_") {
        let start = i + pos;
        let mut end = start + "zkpow_".len();
        while end < bytes.len() && is_name(bytes[end]) {
            end += 1;
        }
        let standalone = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if standalone && end > start + "zkpow_".len() {
            let name = &text[start..end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|base| histograms.contains(base)))
                .unwrap_or(name);
            out.insert(family.to_string());
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn valid_name(name: &str) -> bool {
        name.strip_prefix("zkpow_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
    }

    /// Label names that keep cardinality low; anything else must be argued
    /// for here.
    /// `cache` names one of the sender's three caches.
    const ALLOWED_LABELS: &[&str] = &[
        "rollup", "chain", "kind", "outcome", "reason", "method", "shape", "state", "stage", "purpose", "op", "cache",
    ];

    #[test]
    fn families_follow_the_naming_rules() {
        let m = Metrics::new();
        let mut seen = BTreeSet::new();
        for f in m.families() {
            assert!(valid_name(f.name), "{}: names are ^zkpow_[a-z0-9_]+$", f.name);
            assert!(seen.insert(f.name), "{} declared twice", f.name);
            assert!(!f.help.trim().is_empty(), "{} has no help", f.name);
            match f.kind {
                FamilyType::Counter => assert!(f.name.ends_with("_total"), "counter {} must end in _total", f.name),
                FamilyType::Histogram => {
                    assert!(f.name.ends_with("_seconds"), "histogram {} must end in _seconds", f.name)
                }
                FamilyType::Gauge => assert!(!f.name.ends_with("_total"), "gauge {} must not end in _total", f.name),
            }
            if f.name != "zkpow_build_info" {
                for l in f.labels {
                    assert!(ALLOWED_LABELS.contains(l), "{}: label {l} is not a low-cardinality label", f.name);
                }
            }
        }
    }

    #[test]
    fn every_family_is_exported_with_help_and_type() {
        let m = Metrics::new();
        m.touch(&["demo"], &["l1"], &[Shape::TEST]);
        let text = m.render().unwrap();
        for f in m.families() {
            assert!(text.contains(&format!("# HELP {} {}\n", f.name, f.help)), "no HELP for {}", f.name);
            assert!(text.contains(&format!("# TYPE {} {}\n", f.name, f.kind.as_str())), "no TYPE for {}", f.name);
        }
        // And nothing is exported that is not declared.
        let declared: BTreeSet<&str> = m.families().iter().map(|f| f.name).collect();
        for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let name = line.split(' ').next().unwrap_or_default();
            assert!(declared.contains(name), "{name} is exported but not declared");
        }
        assert!(text.contains(&format!("zkpow_build_info{{git_sha=\"{}\",version=\"", env!("BUILD_GIT_SHA"))));
        assert!(text.contains("zkpow_tasks_created_total{kind=\"aggregate\"} 0"));
        assert!(text.contains("zkpow_chain_rpc_errors_total{chain=\"l1\",kind=\"fatal\",method=\"eth_getLogs\"} 0"));
    }

    #[test]
    fn recording_ignores_bad_amounts_and_computes_lag() {
        let m = get();
        reward_wei("metrics-test", 1.5e18);
        reward_wei("metrics-test", -1.0);
        reward_wei("metrics-test", f64::NAN);
        assert_eq!(m.submission_reward_wei_total.with_label_values(&["metrics-test"]).get(), 1.5e18);
        sequence_stage("metrics-test", SequenceStage::WaitingT1, f64::INFINITY);
        sequence_stage("metrics-test", SequenceStage::WaitingT1, 12.0);
        let h = m.sequence_stage_duration_seconds.with_label_values(&["metrics-test", "waiting_t1"]);
        assert_eq!((h.get_sample_count(), h.get_sample_sum()), (1, 12.0));
        chain_head("metrics-test", 100);
        chain_processed_block("metrics-test", 90);
        assert_eq!(m.chain_lag_blocks.with_label_values(&["metrics-test"]).get(), 10);
        chain_head("metrics-test", u64::MAX);
        assert_eq!(m.chain_head_block.with_label_values(&["metrics-test"]).get(), i64::MAX);
        tx_confirmed("metrics-test", TxPurpose::Reveal, 300_000);
        tx_reverted("metrics-test", TxPurpose::Reveal, 50_000);
        assert_eq!(m.tx_gas_used_total.with_label_values(&["metrics-test", "reveal"]).get(), 350_000);
    }

    #[test]
    fn referenced_names_strip_histogram_suffixes_only() {
        let hist: BTreeSet<&str> = ["zkpow_a_seconds"].into();
        let text = r#"rate(zkpow_a_seconds_bucket{x="1"}[5m]) / zkpow_b_total + my_zkpow_c + zkpow_d_count"#;
        let got = referenced_names(text, &hist);
        let want: BTreeSet<String> = ["zkpow_a_seconds", "zkpow_b_total", "zkpow_d_count"].map(String::from).into();
        assert_eq!(got, want);
    }

    fn dashboard_files() -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "json" || x == "yml" || x == "yaml") {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards"), &mut out);
        out.sort();
        out
    }

    /// Every `zkpow_*` name a dashboard query, an alert rule or the scrape
    /// config mentions must be a family the daemon exports.
    #[test]
    fn dashboards_and_alerts_name_only_exported_metrics() {
        let m = Metrics::new();
        let declared: BTreeSet<&str> = m.families().iter().map(|f| f.name).collect();
        let histograms: BTreeSet<&str> =
            m.families().iter().filter(|f| f.kind == FamilyType::Histogram).map(|f| f.name).collect();
        let files = dashboard_files();
        let dashboards: Vec<&PathBuf> = files.iter().filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
        assert!(dashboards.len() >= 3, "expected the overview, provers and submission dashboards: {files:?}");
        assert!(files.iter().any(|p| p.ends_with("prometheus/alerts.yml")), "no alert rules: {files:?}");
        let mut used = BTreeSet::new();
        for path in &files {
            let text = std::fs::read_to_string(path).unwrap();
            if path.extension().is_some_and(|x| x == "json") {
                let json: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let mut exprs = Vec::new();
                collect_exprs(&json, &mut exprs);
                assert!(!exprs.is_empty(), "{} has no queries", path.display());
                for e in &exprs {
                    assert!(
                        !referenced_names(e, &histograms).is_empty(),
                        "{}: query {e:?} names no zkpow metric",
                        path.display()
                    );
                }
            }
            let names = referenced_names(&text, &histograms);
            if path.ends_with("prometheus/alerts.yml") {
                assert!(names.len() >= 5, "the alert rules name only {names:?}");
            }
            for n in &names {
                assert!(
                    declared.contains(n.as_str()),
                    "{} names {n}, which the daemon does not export",
                    path.display()
                );
            }
            used.extend(names);
        }
        assert!(used.contains("zkpow_tasks_proving_duration_seconds"), "the dashboards show proving times");
    }

    fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                        _ => collect_exprs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
            _ => {}
        }
    }

    /// README.md's metrics table lists every family with its type.
    #[test]
    fn readme_lists_every_family() {
        let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
        for f in Metrics::new().families() {
            let row = format!("| `{}` | {} |", f.name, f.kind.as_str());
            assert!(readme.contains(&row), "README.md has no row starting {row}");
        }
    }
}
