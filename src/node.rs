//! The aggregator daemon's composition root: opens the database, takes the
//! failover lease, and wires the chain watchers, the Proof Generator, the
//! dispatcher, the Proof Manager and Sender and the HTTP server together,
//! then runs until shutdown. Everything it starts rebuilds its state from
//! the database.
//!
//! * one watcher per base chain: confirmed sequences → database, reorgs →
//!   rewind, the contract's verified batch → sequences marked verified;
//! * the [`ProofGenerator`] and its sequence supervisors
//!   ([`crate::aggregator::generator`]), woken by the watcher;
//! * the [`ProofRouter`], the dispatcher's sink: every accepted proof goes
//!   to the actor that owns its task, which stores it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use anyhow::Context as _;
use tokio::sync::watch;

use crate::aggregator::dispatcher::provers::RegistryConfig;
use crate::aggregator::dispatcher::queue::QueueConfig;
use crate::aggregator::dispatcher::verify::Groth16TaskVerifier;
use crate::aggregator::dispatcher::{Dispatcher, DispatcherConfig, DispatcherHandle};
use crate::aggregator::generator::{GeneratorCtx, ProofGenerator, ProofRouter, Registry, Wake};
use crate::aggregator::genesis::{check_genesis, load_genesis};
use crate::aggregator::ha::{self, Role};
use crate::aggregator::manager::{self, SenderRollup, MAX_BACKOFF};
use crate::aggregator::pause::PauseSwitch;
use crate::aggregator::pipeline::{self, RollupCtx};
use crate::api::control::{ChainProbe, ControlApi, RollupInfo};
use crate::api::prover::ProverApi;
use crate::api::standby::StandbyApi;
use crate::chain::bindings::ZkPowRollup;
use crate::chain::txmanager::TxManager;
use crate::chain::watcher::{Cursor, Poll, Watcher};
use crate::chain::{address_bytes, b256_to_root, load_signer};
use crate::circuit::keys::VerifierKey;
use crate::circuit::public::domain;
use crate::circuit::StateTree;
use crate::config::{Config, RollupConfig};
use crate::db::lease::Fence;
use crate::db::{self, Db};
use crate::prover::Groth16Verifier;
use crate::token::BearerToken;

struct RollupRuntime {
    ctx: RollupCtx,
    address: Address,
    chain: String,
}

async fn rollup_runtime(cfg: &Config, r: &RollupConfig) -> anyhow::Result<RollupRuntime> {
    let chain = cfg.chains.iter().find(|c| c.name == r.chain).context("rollup names an unknown chain")?;
    let signer = load_signer(chain)?;
    let address: Address = r.address.parse().with_context(|| format!("rollups.{}: address {:?}", r.name, r.address))?;
    let vk = VerifierKey::load(&cfg.keys.dir, r.shape)?;
    let genesis = load_genesis(&r.genesis_file)?;
    check_genesis(&genesis, r.shape.d)
        .with_context(|| format!("rollup {}: genesis file {}", r.name, r.genesis_file.display()))?;
    let provider = ProviderBuilder::new().connect_http(chain.rpc_url.parse().context("chains.rpc_url")?);
    let onchain_genesis = ZkPowRollup::new(address, provider)
        .stateRootAt(0)
        .call()
        .await
        .with_context(|| format!("rollup {}: reading the genesis root from {address}", r.name))?;
    let local = StateTree::with_accounts(r.shape.d, genesis.clone()).root();
    if b256_to_root(&onchain_genesis) != Some(local) {
        anyhow::bail!(
            "rollup {}: genesis file {} has root {} but the contract's genesis root is {onchain_genesis}",
            r.name,
            r.genesis_file.display(),
            crate::circuit::public::fr_to_hex(&local)
        );
    }
    Ok(RollupRuntime {
        ctx: RollupCtx {
            name: r.name.clone(),
            shape: r.shape,
            vk_hash: format!("0x{}", hex::encode(vk.vk_hash)),
            domain: domain(chain.chain_id, &address_bytes(&address)),
            miner: address_bytes(&signer.address()),
            genesis,
            start_batch: r.start_batch,
        },
        address,
        chain: chain.name.clone(),
    })
}

/// Runs the aggregator until `shutdown` turns true. Call inside an actix system.
pub async fn run(cfg: Config, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    crate::metrics::init(&cfg);
    let Some(db) = connect(&cfg.aggregator.database_url, shutdown.clone()).await? else { return Ok(()) };
    let admin = match (&cfg.api.admin_token_file, &cfg.api.admin_token_env) {
        (None, None) => {
            tracing::warn!("no api.admin_token_file or api.admin_token_env: control calls are refused");
            None
        }
        (file, env) => Some(BearerToken::from_file_or_env(file.as_deref(), env.as_deref(), "api")?),
    };

    // Who may act: the only user of a SQLite file, or the holder of the
    // PostgreSQL lease (a standby until then).
    let (_sqlite_lock, fence, role) = match db::DbUrl::parse(&cfg.aggregator.database_url)? {
        db::DbUrl::Sqlite(path) => {
            let lock = ha::SqliteLock::acquire(&path)?;
            crate::metrics::failover_role(true, 0);
            (Some(lock), None, Role::Single)
        }
        _ => {
            let holder = ha::holder_id();
            let standby = StandbyApi {
                db: db.clone(),
                holder: holder.clone(),
                admin: admin.clone(),
                read_open: cfg.api.read_open,
            };
            let server = actix_web::HttpServer::new(move || {
                let standby = standby.clone();
                actix_web::App::new()
                    .wrap(actix_web::middleware::from_fn(crate::api::limits::uri_length))
                    .configure(|c| standby.configure(c))
                    .configure(crate::api::health::configure)
                    .configure(crate::api::metrics::configure)
                    .default_service(actix_web::web::to(crate::api::standby::unavailable))
            })
            .workers(1)
            .disable_signals()
            .listen(bind(&cfg.aggregator.listen).await?)
            .with_context(|| format!("serving on aggregator.listen {}", cfg.aggregator.listen))?
            .run();
            let standby_server = server.handle();
            actix_rt::spawn(server);
            tracing::info!(listen = %cfg.aggregator.listen, holder = %holder, "standing by until this process holds the aggregator lease");
            let fence = ha::acquire(&db, &holder, &cfg.failover, shutdown.clone()).await;
            // The active server takes the port over.
            standby_server.stop(false).await;
            match fence? {
                Some(fence) => {
                    let role = Role::Active { holder, epoch: fence.epoch };
                    (None, Some(fence), role)
                }
                None => return Ok(()),
            }
        }
    };
    if let Some(fence) = &fence {
        let (db, fence, cfg) = (db.clone(), fence.clone(), cfg.failover.clone());
        let shutdown = shutdown.clone();
        actix_rt::spawn(async move {
            if let ha::TermEnd::Lost(_) = ha::keep(db, fence, cfg, shutdown).await {
                // Nothing of this term may act any more; a fresh process
                // stands by and rebuilds everything from the database.
                ha::restart_as_standby();
            }
        });
    }

    let mut rollups = Vec::new();
    for r in &cfg.rollups {
        rollups.push(rollup_runtime(&cfg, r).await?);
    }
    let vks = cfg
        .rollups
        .iter()
        .map(|r| r.shape)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|s| VerifierKey::load(&cfg.keys.dir, s))
        .collect::<Result<Vec<_>, _>>()?;
    let prover_token = BearerToken::from_file_or_env(
        cfg.aggregator.prover_token_file.as_deref(),
        cfg.aggregator.prover_token_env.as_deref(),
        "aggregator",
    )?;

    let registry = Registry::default();
    // The router and the generator need each other's addresses: the
    // generator's context is created first so the router can hold it.
    let generator_ctx = actix::Context::<ProofGenerator>::new();
    let generator_addr = generator_ctx.address();
    let router = ProofRouter::new(db.clone(), registry.clone(), generator_addr.clone().recipient()).start();
    let dcfg = DispatcherConfig {
        queue: QueueConfig {
            lease_ms: cfg.aggregator.lease_ms,
            max_attempts: cfg.aggregator.max_attempts,
            ..QueueConfig::default()
        }
        .with_rollup_weights(&cfg.rollups),
        provers: RegistryConfig::default(),
        poll_ms: cfg.aggregator.claim_poll_ms,
        ..DispatcherConfig::default()
    };
    let verifier = Arc::new(Groth16TaskVerifier::new(Groth16Verifier::new(vks)));
    let pause = Arc::new(PauseSwitch::default());
    let dispatcher =
        DispatcherHandle::start(Dispatcher::new(dcfg, verifier, router.recipient()).with_pause(pause.clone()));

    let mut probes = Vec::new();
    for chain in &cfg.chains {
        probes.push(ChainProbe {
            name: chain.name.clone(),
            chain_id: chain.chain_id,
            confirmations: chain.confirmations,
            provider: ProviderBuilder::new().connect_http(chain.rpc_url.parse().context("chains.rpc_url")?).erased(),
        });
    }
    let control = ControlApi {
        db: db.clone(),
        dispatcher: dispatcher.clone(),
        pause: pause.clone(),
        chains: probes,
        rollups: rollups.iter().map(|r| RollupInfo { name: r.ctx.name.clone(), chain: r.chain.clone() }).collect(),
        admin,
        read_open: cfg.api.read_open,
        max_lag_blocks: cfg.api.ready_max_lag_blocks,
        role,
    };
    let api = ProverApi::new(dispatcher.clone(), prover_token);
    let server = actix_web::HttpServer::new(move || {
        let api = api.clone();
        let control = control.clone();
        actix_web::App::new()
            .wrap(actix_web::middleware::from_fn(crate::api::limits::uri_length))
            .configure(|c| api.configure(c))
            .configure(|c| control.configure(c))
            .configure(crate::api::health::configure)
            .configure(crate::api::metrics::configure)
            .default_service(actix_web::web::to(crate::api::not_found))
    })
    .workers(2)
    .disable_signals()
    .listen(bind(&cfg.aggregator.listen).await?)
    .with_context(|| format!("serving on aggregator.listen {}", cfg.aggregator.listen))?
    .run();
    let server_handle = server.handle();
    actix_rt::spawn(server);
    tracing::info!(listen = %cfg.aggregator.listen, rollups = rollups.len(), "aggregator started");

    // One watcher per chain.
    let poll = Duration::from_millis(cfg.aggregator.poll_interval_ms);
    for chain in &cfg.chains {
        let mine: Vec<(Address, RollupCtx)> =
            rollups.iter().filter(|r| r.chain == chain.name).map(|r| (r.address, r.ctx.clone())).collect();
        if mine.is_empty() {
            continue;
        }
        let provider: DynProvider =
            ProviderBuilder::new().connect_http(chain.rpc_url.parse().context("chains.rpc_url")?).erased();
        let (db, wake, chain_id, confirmations, name) =
            (db.clone(), generator_addr.clone().recipient(), chain.chain_id, chain.confirmations, chain.name.clone());
        let fence = fence.clone();
        actix_rt::spawn(async move {
            watch_chain(db, provider, mine, chain_id, confirmations, poll, wake, name, fence).await;
        });
    }

    // One proof manager and sender per chain, with the chain's transaction manager.
    if cfg.sender.enabled {
        for chain in &cfg.chains {
            let mine: Vec<SenderRollup> = rollups
                .iter()
                .filter(|r| r.chain == chain.name)
                .map(|r| SenderRollup { ctx: r.ctx.clone(), address: r.address })
                .collect();
            if mine.is_empty() {
                continue;
            }
            let provider: DynProvider =
                ProviderBuilder::new().connect_http(chain.rpc_url.parse().context("chains.rpc_url")?).erased();
            let tm = TxManager::new(
                db.clone(),
                provider,
                load_signer(chain)?,
                chain.chain_id,
                chain.name.clone(),
                chain.confirmations,
                cfg.sender.clone(),
            )
            .with_fence(fence.clone());
            manager::start_chain(db.clone(), tm, mine, cfg.sender.clone(), pause.clone(), poll, shutdown.clone());
        }
    } else {
        tracing::warn!("sender.enabled = false: proofs are not submitted on chain");
    }

    // Retention: settled sequences give up their proofs and transaction bytes.
    actix_rt::spawn(crate::aggregator::retention::run(db.clone(), cfg.retention.clone(), shutdown.clone()));

    // The Proof Generator.
    let gcx = GeneratorCtx { db: db.clone(), dispatcher: dispatcher.clone(), registry, fence: fence.clone() };
    let rollup_ctxs: Vec<RollupCtx> = rollups.iter().map(|r| r.ctx.clone()).collect();
    generator_ctx.run(ProofGenerator::new(gcx, rollup_ctxs, poll * 5));

    let _ = shutdown.changed().await;
    tracing::info!("aggregator stopping");
    server_handle.stop(true).await;
    if let Some(fence) = &fence {
        ha::release(&db, fence).await;
    }
    Ok(())
}

/// Opens the database. A PostgreSQL server that cannot be reached is waited
/// for (with backoff, until shutdown): a standby, or a process that lost its
/// lease with its connection, must come back when the database does.
/// Everything else (a bad URL, a failed migration, a SQLite file that cannot
/// be opened) fails at once.
async fn connect(url: &str, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<Option<Db>> {
    let parsed = db::DbUrl::parse(url)?;
    let shown = parsed.redacted();
    let mut backoff = Duration::from_secs(1);
    loop {
        let u = url.to_string();
        match tokio::task::spawn_blocking(move || Db::connect(&u)).await? {
            Ok(db) => return Ok(Some(db)),
            Err(e) if e.is_transient() && parsed.backend() == db::Backend::Postgres => {
                tracing::warn!(db = %shown, error = %format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "database unreachable; waiting for it");
            }
            Err(e) => return Err(e).with_context(|| format!("opening the database {shown}")),
        }
        tokio::select! {
            _ = shutdown.changed() => return Ok(None),
            _ = tokio::time::sleep(backoff) => {}
        }
        if *shutdown.borrow() {
            return Ok(None);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Binds the HTTP listener. The port may still be held for a moment by the
/// standby server this process just stopped, so "in use" is retried briefly.
async fn bind(addr: &str) -> anyhow::Result<std::net::TcpListener> {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("binding aggregator.listen {addr}")),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn watch_chain(
    db: Db,
    provider: DynProvider,
    rollups: Vec<(Address, RollupCtx)>,
    chain_id: u64,
    confirmations: u64,
    poll: Duration,
    wake: actix::Recipient<Wake>,
    chain: String,
    fence: Option<Arc<Fence>>,
) {
    let by_address: HashMap<Address, RollupCtx> = rollups.iter().cloned().collect();
    let watcher =
        Watcher::new(provider.clone(), rollups.iter().map(|(a, _)| *a).collect(), confirmations).with_chain(&chain);
    let mut backoff = poll;
    loop {
        if !db::lease::may_act(fence.as_deref()) {
            tokio::time::sleep(poll).await;
            continue;
        }
        let step = async {
            let cursor = db
                .run(move |c| db::chain::get_chain_cursor(c, chain_id))
                .await?
                .map(|c| Cursor { block: c.block_number, hash: c.block_hash.into() });
            if let Some(c) = &cursor {
                crate::metrics::chain_processed_block(&chain, c.block);
            }
            match watcher.poll(cursor, 0).await? {
                Poll::Idle => Ok::<bool, anyhow::Error>(false),
                Poll::Progress { sequences, cursor } => {
                    let by_address = by_address.clone();
                    let n = sequences.len();
                    db.run(move |c| {
                        db::transaction(c, |c| {
                            for (addr, ctx) in &by_address {
                                let mine: Vec<_> = sequences.iter().filter(|s| s.rollup == *addr).cloned().collect();
                                pipeline::ingest(c, ctx, &mine, db::now_ms())?;
                            }
                            db::chain::set_chain_cursor(c, chain_id, cursor.block, &cursor.hash.0, db::now_ms())
                        })
                    })
                    .await?;
                    crate::metrics::chain_processed_block(&chain, cursor.block);
                    if n > 0 {
                        tracing::info!(chain = %chain, sequences = n, block = cursor.block, "sequences stored");
                    }
                    Ok(true)
                }
                Poll::Reorg { rewind_to } => {
                    let hash = provider
                        .get_block_by_number(rewind_to.into())
                        .await
                        .inspect_err(|e| crate::metrics::rpc_failed(&chain, "eth_getBlockByNumber", e))?
                        .map(|b| b.header.hash)
                        .context("rewind block missing")?;
                    let names: Vec<String> = by_address.values().map(|c| c.name.clone()).collect();
                    db.run(move |c| {
                        db::transaction(c, |c| {
                            for n in &names {
                                db::sequences::rewind(c, n, rewind_to)?;
                            }
                            db::chain::set_chain_cursor(c, chain_id, rewind_to, &hash.0, db::now_ms())
                        })
                    })
                    .await?;
                    crate::metrics::chain_processed_block(&chain, rewind_to);
                    tracing::warn!(chain = %chain, rewind_to, "reorg: rewound");
                    Ok(true)
                }
            }
        };
        match step.await {
            Ok(progress) => {
                backoff = poll;
                for (addr, ctx) in &by_address {
                    let verified = ZkPowRollup::new(*addr, provider.clone()).lastVerifiedBatch().call().await;
                    if let Err(e) = &verified {
                        crate::metrics::contract_call_failed(&chain, e);
                    }
                    if let Ok(lv) = verified {
                        crate::metrics::rollup_last_verified_batch(&ctx.name, lv);
                        let name = ctx.name.clone();
                        if let Ok(n) = db.run(move |c| pipeline::mark_verified(c, &name, lv, db::now_ms())).await {
                            if n > 0 {
                                tracing::info!(rollup = %ctx.name, last_verified = lv, "sequences verified on chain");
                            }
                        }
                    }
                }
                wake.do_send(Wake);
                if !progress {
                    tokio::time::sleep(poll).await;
                }
            }
            Err(e) => {
                tracing::warn!(chain = %chain, error = %format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "watcher step failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
