//! The whole proving pipeline with real processes: an aggregator and two
//! prover workers (the `zkpow` binary) against anvil, on SQLite and on
//! PostgreSQL. A 4-batch and a 1-batch sequence go through batch →
//! aggregate → final, and the final artifacts verify with the contract's
//! verifier on chain.

use std::time::{Duration, Instant};

use alloy::primitives::{Bytes, U256};
use rand::SeedableRng;
use zkpow::aggregator::pipeline::final_artifact;
use zkpow::chain::bindings::{Groth16BatchVerifier, ZkPowRollup};
use zkpow::chain::deploy::{deploy, RollupParams};
use zkpow::chain::root_to_b256;
use zkpow::circuit::batch::encode;
use zkpow::circuit::encoding::vk_to_bytes;
use zkpow::circuit::executor::apply_batch;
use zkpow::circuit::keys::{cached_test_keys, test_params_dir};
use zkpow::circuit::sample::{genesis_accounts, random_transfers};
use zkpow::circuit::{Shape, StateTree};
use zkpow::db::{self, Db, SequenceState};

use crate::common::anvil::{spawn, wallet};
use crate::common::procs::{free_port, log_tail, zkpow};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Two provers, and a garbage prover that gets quarantined first.
    TwoProvers,
    /// One prover is SIGKILLed mid-work; the other finishes.
    KillProver,
    /// The aggregator is SIGKILLed mid-work and restarted.
    RestartAggregator,
}

async fn run_pipeline(database_url: &str, scenario: Scenario) {
    let kill_one_prover = scenario == Scenario::KillProver;
    let dir = tempfile::tempdir().unwrap();
    let anvil = spawn();
    let (_, owner) = wallet(&anvil, 0);
    let (seq_addr, sequencer) = wallet(&anvil, 1);
    let shape = Shape::TEST;
    let keys = cached_test_keys(shape).unwrap();
    let genesis = genesis_accounts(shape, 8, 1_000_000);
    let mut state = StateTree::with_accounts(shape.d, genesis.clone());
    let params = RollupParams::dev(
        vk_to_bytes(&keys.params.vk).unwrap(),
        seq_addr,
        root_to_b256(&state.root()),
        shape.batch_bytes() as u64,
    );
    let dep = deploy(owner.clone(), &params, None).await.unwrap();
    let rollup = ZkPowRollup::new(dep.rollup, sequencer.clone());
    let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(5);
    for n in [4usize, 1] {
        let mut batches = Vec::new();
        for _ in 0..n {
            let bytes = encode(shape, &random_transfers(&mut rng, shape, &state, 8, 0.3)).unwrap();
            apply_batch(&mut state, shape, &bytes).unwrap();
            batches.push(Bytes::from(bytes));
        }
        rollup.sequenceBatches(batches).send().await.unwrap().get_receipt().await.unwrap();
    }

    let port = free_port();
    std::fs::write(dir.path().join("token"), "test-prover-token-0123456789abcdef\n").unwrap();
    std::fs::write(dir.path().join("miner.key"), format!("{}\n", hex::encode(anvil.keys()[2].to_bytes()))).unwrap();
    std::fs::write(dir.path().join("genesis.json"), serde_json::to_string(&genesis).unwrap()).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[keys]
dir = "{keys}"
shapes = ["2,4"]

[aggregator]
database_url = "{database_url}"
listen = "127.0.0.1:{port}"
prover_token_file = "{tmp}/token"
poll_interval_ms = 200
lease_ms = 4000
claim_poll_ms = 1000

[prover]
aggregator_url = "http://127.0.0.1:{port}"
token_file = "{tmp}/token"
workers = 1

# These tests stop at the final proofs; the sender has its own.
[sender]
enabled = false

[[chains]]
name = "l1"
rpc_url = "{rpc}"
chain_id = {chain_id}
confirmations = 0
key_file = "{tmp}/miner.key"

[[rollups]]
name = "r1"
chain = "l1"
address = "{rollup}"
shape = "2,4"
genesis_file = "{tmp}/genesis.json"
"#,
            keys = test_params_dir().display(),
            tmp = dir.path().display(),
            rpc = anvil.endpoint(),
            chain_id = anvil.chain_id(),
            rollup = dep.rollup,
        ),
    )
    .unwrap();

    let mut agg = zkpow(&config, &["aggregator"], &dir.path().join("agg.log"), &[]);
    let prover = |name: &'static str| {
        zkpow(&config, &["prover"], &dir.path().join(format!("{name}.log")), &[("ZKPOW_PROVER__NAME", name)])
    };
    let db = Db::connect(database_url).unwrap();
    let done_tasks = |db: &Db| -> Vec<db::ProofTask> {
        db.with_conn(|c| {
            let mut all = db::tasks::sequence_tasks(c, "r1", 1)?;
            all.extend(db::tasks::sequence_tasks(c, "r1", 5)?);
            Ok(all)
        })
        .unwrap()
        .into_iter()
        .filter(|t| t.status == db::TaskStatus::Done)
        .collect()
    };
    let started = Instant::now();
    let wait = |what: &str| {
        if started.elapsed() > Duration::from_secs(240) {
            panic!("{what} not reached in time; aggregator log tail:\n{}", log_tail(&dir.path().join("agg.log"), 40));
        }
    };
    if scenario == Scenario::TwoProvers {
        garbage_prover(port, &format!("0x{}", hex::encode(keys.vk_hash)), started).await;
    }
    let _p2;
    if kill_one_prover {
        // p1 works alone until it has delivered a proof and (the queue still
        // being full) holds its next lease; then it is SIGKILLed. Its lease
        // must expire and p2, started afterwards, must finish everything.
        let p1 = prover("p1");
        while done_tasks(&db).is_empty() {
            wait("a first proof");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(p1);
        _p2 = vec![prover("p2")];
    } else {
        _p2 = vec![prover("p1"), prover("p2")];
    }
    if scenario == Scenario::RestartAggregator {
        // Everything the first aggregator accepted is in the database; the
        // restarted one resumes from it and the provers reconnect.
        while done_tasks(&db).is_empty() {
            wait("a first proof");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(agg);
        let before = done_tasks(&db).len();
        tokio::time::sleep(Duration::from_millis(500)).await;
        agg = zkpow(&config, &["aggregator"], &dir.path().join("agg2.log"), &[]);
        assert!((1..10).contains(&before), "killed mid-work: {before} of 10 tasks done");
    }
    let _agg = agg;
    loop {
        let seqs = db.with_conn(|c| db::sequences::list_sequences(c, "r1", &[])).unwrap();
        if seqs.len() == 2 && seqs.iter().all(|s| s.state == SequenceState::Proven) {
            break;
        }
        wait("both sequences proven");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if kill_one_prover {
        let provers: std::collections::BTreeSet<String> = done_tasks(&db)
            .iter()
            .filter_map(|t| db.with_conn(|c| db::tasks::get_proof(c, &t.id)).unwrap().and_then(|p| p.prover))
            .collect();
        assert_eq!(provers.len(), 2, "the killed prover's work was finished by the other: {provers:?}");
    }

    let verifier = Groth16BatchVerifier::new(dep.verifier, owner.clone());
    for (init, fin) in [(1u64, 4u64), (5, 5)] {
        let art = db.with_conn(|c| final_artifact(c, "r1", init)).unwrap().expect("final artifact");
        assert_eq!((art.init_batch, art.final_batch), (init, fin));
        assert_eq!(art.bundle.proofs.len() as u64, fin - init + 1);
        art.bundle.check_covers(init, fin).unwrap();
        let inputs: Vec<U256> = art.inputs().iter().map(|w| U256::from_be_bytes(*w)).collect();
        let ok = verifier.verify(inputs, Bytes::from(art.proof_bytes())).call().await.unwrap();
        assert!(ok, "final artifact of sequence {init}..{fin} must verify on chain");
    }
    let last = db.with_conn(|c| final_artifact(c, "r1", 5)).unwrap().unwrap();
    assert_eq!(last.new_state_root(), Some(state.root()), "the pipeline's root is the native executor's");
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_proves_sequences_with_two_provers_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    run_pipeline(&format!("sqlite://{}/agg.db", dir.path().display()), Scenario::TwoProvers).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_resumes_after_the_aggregator_is_killed_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    run_pipeline(&format!("sqlite://{}/agg.db", dir.path().display()), Scenario::RestartAggregator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_survives_a_killed_prover_on_postgres() {
    let pg = crate::common::postgres_db();
    run_pipeline(pg.url(), Scenario::KillProver).await;
}

/// A prover that returns garbage to the real aggregator: each submission is
/// rejected with a clear error and counted, and after repeats the prover is
/// quarantined. The tasks go back to the queue for honest provers.
async fn garbage_prover(port: u16, vk_hash: &str, started: Instant) {
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://127.0.0.1:{port}/v1/prover/{p}");
    let auth = "Bearer test-prover-token-0123456789abcdef";
    // Wait for the aggregator to listen.
    let registered = loop {
        let r = http
            .post(url("register"))
            .header("authorization", auth)
            .json(&serde_json::json!({"name": "garbage", "version": "0", "shapes": [{"shape": "2,4", "vk_hash": vk_hash}], "threads": 1}))
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => break r.json::<serde_json::Value>().await.unwrap(),
            _ if started.elapsed() < Duration::from_secs(60) => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("aggregator never accepted a registration: {other:?}"),
        }
    };
    let id = registered["prover_id"].as_str().unwrap().to_string();
    let mut rejected = 0;
    while rejected < 3 {
        let r = http
            .post(url("claim"))
            .header("authorization", auth)
            .json(&serde_json::json!({"prover_id": id}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "claim failed: {}", r.status());
        if r.status() == reqwest::StatusCode::NO_CONTENT {
            assert!(started.elapsed() < Duration::from_secs(120), "no task was ever handed out");
            continue;
        }
        let claim: serde_json::Value = r.json().await.unwrap();
        assert_eq!(claim["kind"], "batch", "only batch tasks exist before any proof");
        let req: zkpow::wire::proof::ProofRequest = serde_json::from_value(claim["request"].clone()).unwrap();
        let garbage = zkpow::wire::proof::ProofOutput { proof: vec![1u8; 512], public: req.public_inputs() };
        let r = http
            .post(url("submit"))
            .header("authorization", auth)
            .json(&serde_json::json!({"prover_id": id, "task_id": claim["task_id"], "proof": garbage}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422, "garbage must be rejected as an invalid proof");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_proof", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 10, "a clear error: {body}");
        rejected += 1;
    }
    let r = http
        .post(url("claim"))
        .header("authorization", auth)
        .json(&serde_json::json!({"prover_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "after three invalid proofs the prover is quarantined");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quarantined", "{body}");
}
