//! The two-step submission end to end: real `zkpow` aggregators and provers,
//! real Groth16 proofs, anvil mining a block every half second, and windows
//! of a few blocks.

use std::time::Duration;

use alloy::primitives::B256;
use zkpow::aggregator::manager::reveal_call;
use zkpow::aggregator::pipeline::final_artifact;
use zkpow::chain::bindings::ZkPowRollup;
use zkpow::chain::root_to_b256;
use zkpow::circuit::Shape;
use zkpow::db;

use crate::common::anvil::wallet;
use crate::common::net::{
    assert_clean_outbox, bond, deploy_rollup, outcome, spawn_chain, wait_for, Miner, MinerChain, Onchain, ETHER,
};
use crate::common::proxy::Proxy;

const REWARD: u128 = ETHER / 10;
const PENALTY_WRONG_PROOF: u128 = ETHER / 2;
const PENALTY_NO_PROOF: u128 = ETHER / 4;
const LIMIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread")]
async fn two_miners_are_rewarded_pro_rata_and_a_copier_is_punished() {
    let tmp = tempfile::tempdir().unwrap();
    let anvil = spawn_chain(31337, 0.5);
    let mut r = deploy_rollup(&anvil, 0, "r1", Shape::TEST, 16, 16, None).await;
    let on = Onchain::new(&anvil, &r);
    bond(&anvil, r.dep.deposit, 2, 3 * ETHER).await;
    bond(&anvil, r.dep.deposit, 3, ETHER).await;
    bond(&anvil, r.dep.deposit, 4, ETHER).await;
    let chains = [MinerChain { name: "l1", rpc_url: anvil.endpoint(), anvil: &anvil }];
    let mut a = Miner::new(tmp.path(), "a", 2, &chains, &[&r], "");
    // Only a settles other miners' expired commits: two settlers would race
    // for the same one, and the loser's transaction would revert.
    let mut b = Miner::new(tmp.path(), "b", 3, &chains, &[&r], "[sender]\nsettle_others_min_ratio = 0\n");
    for m in [&mut a, &mut b] {
        m.start_aggregator();
        m.start_prover();
    }
    let s1 = r.post(2).await;
    let s2 = r.post(1).await;

    // The copier commits a made-up hash in T1, hoping to reveal someone
    // else's proof in T2.
    let (copier, c) = wallet(&anvil, 4);
    let c_rollup = ZkPowRollup::new(r.dep.rollup, c);
    wait_for("the first window to open", LIMIT, &[&a, &b], || async {
        let ws = on.rollup.windowStatus(s1.0).call().await.unwrap();
        (ws.phase == 2).then_some(())
    })
    .await;
    c_rollup.submitProofHash(s1.0, s1.1, B256::repeat_byte(0x42)).send().await.unwrap().get_receipt().await.unwrap();
    // A lazy miner commits junk to s2 and never reveals: its bond stays
    // locked until someone settles it, and settling pays the settler.
    let (lazy, l) = wallet(&anvil, 5);
    bond(&anvil, r.dep.deposit, 5, ETHER).await;
    let l_rollup = ZkPowRollup::new(r.dep.rollup, l);
    wait_for("the second window to open", LIMIT, &[&a, &b], || async {
        (on.rollup.windowStatus(s2.0).call().await.unwrap().phase == 2).then_some(())
    })
    .await;
    l_rollup.submitProofHash(s2.0, s2.1, B256::repeat_byte(0x17)).send().await.unwrap().get_receipt().await.unwrap();
    wait_for("a's valid reveal", LIMIT, &[&a, &b], || async {
        on.commit_of(s1.0, a.address).await.valid.then_some(())
    })
    .await;
    let art = a.db().with_conn(|c| final_artifact(c, "r1", s1.0)).unwrap().unwrap();
    let call = reveal_call(&art).unwrap();
    let receipt = c_rollup
        .verifyBatches(call.initNumBatch, call.finalNewBatch, call.newStateRoot, call.roots, call.proof)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "a copied proof does not revert: the penalty must stick");
    let punished = receipt.decoded_log::<ZkPowRollup::Punished>().expect("the copier is punished");
    assert_eq!(punished.miner, copier);

    for (m, s) in [(&a, s1), (&b, s1), (&a, s2), (&b, s2)] {
        let what = format!("{} rewarded for {}..{}", m.name, s.0, s.1);
        let got = wait_for(&what, LIMIT, &[&a, &b], || async { outcome(m, "r1", s.0) }).await;
        assert_eq!(got, "rewarded", "{what}");
    }
    // The lazy commit is settled by an honest miner, who books its share.
    wait_for("the lazy commit settled", LIMIT, &[&a, &b], || async {
        on.commit_of(s2.0, lazy).await.settled.then_some(())
    })
    .await;
    assert_eq!(on.deposit_of(lazy).await, ETHER - PENALTY_NO_PROOF);
    let share = PENALTY_NO_PROOF / 10;
    let booked = |m: &Miner| -> u128 {
        m.db().with_conn(|c| db::outbox::booked_total(c, "r1", db::outbox::BookedKind::SettlerShare)).unwrap()
    };
    let shares = wait_for("the settler share booked", LIMIT, &[&a, &b], || async {
        let (x, y) = (booked(&a), booked(&b));
        (x + y > 0).then_some((x, y))
    })
    .await;
    assert_eq!(shares, (share, 0), "one settlement, booked by its settler");
    // Pro rata to deposit (3:1), for both sequences; nobody honest punished.
    assert_eq!(on.rewards(a.address).await, 2 * REWARD * 3 / 4 + shares.0);
    assert_eq!(on.rewards(b.address).await, 2 * REWARD / 4 + shares.1);
    assert_eq!(on.deposit_of(a.address).await, 3 * ETHER);
    assert_eq!(on.deposit_of(b.address).await, ETHER);
    assert_eq!(on.rewards(copier).await, 0);
    assert_eq!(on.deposit_of(copier).await, ETHER - PENALTY_WRONG_PROOF);
    assert_eq!(on.rollup.stateRoot().call().await.unwrap(), root_to_b256(&r.state.root()));

    // A miner whose proof arrives after someone else verified the sequence
    // sends nothing: b loses its prover, a verifies s3, then b proves it.
    b.provers.clear();
    let b_nonce = on.nonce(b.address).await;
    let s3 = r.post(1).await;
    wait_for("a verifies s3", LIMIT, &[&a, &b], || async { (on.last_verified().await >= s3.1).then_some(()) }).await;
    b.start_prover();
    wait_for("a rewarded for s3", LIMIT, &[&a], || async { outcome(&a, "r1", s3.0) }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(on.nonce(b.address).await, b_nonce, "no gas spent on a sequence already verified");
    assert!(matches!(outcome(&b, "r1", s3.0).as_deref(), None | Some("verified_by_others")));
    assert_eq!(on.commit_of(s3.0, b.address).await.windowId, 0);
    assert_clean_outbox(&a, &on, 31337).await;
    assert_clean_outbox(&b, &on, 31337).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_miner_survives_kills_a_frozen_window_and_an_rpc_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let anvil = spawn_chain(31337, 0.5);
    let mut r = deploy_rollup(&anvil, 0, "r1", Shape::TEST, 8, 12, None).await;
    let on = Onchain::new(&anvil, &r);
    // Enough to stay above the minimum after the one penalty below.
    bond(&anvil, r.dep.deposit, 2, 2 * ETHER).await;
    let target = format!("127.0.0.1:{}", anvil.port()).parse().unwrap();
    let proxy = Proxy::start(target).await;
    let chains = [MinerChain { name: "l1", rpc_url: proxy.url(), anvil: &anvil }];
    let mut m = Miner::new(tmp.path(), "m", 2, &chains, &[&r], "");
    m.start_aggregator();
    m.start_prover();
    let me = m.address;
    let committed = |init: u64, window: u32| {
        let on = &on;
        move || async move { (on.commit_of(init, me).await.windowId == window).then_some(()) }
    };
    let valid = |init: u64| {
        let on = &on;
        move || async move { on.commit_of(init, me).await.valid.then_some(()) }
    };

    // 1. SIGKILL after the commit is mined; the restarted daemon reveals in time.
    let s1 = r.post(1).await;
    wait_for("commit of s1", LIMIT, &[&m], committed(s1.0, 1)).await;
    m.kill_aggregator();
    tokio::time::sleep(Duration::from_millis(500)).await;
    m.start_aggregator();
    wait_for("reveal of s1 after the restart", LIMIT, &[&m], valid(s1.0)).await;

    // 2. Frozen from its commit to the end of the window: nobody reveals,
    //    and the resend path gets the sequence verified in the next window.
    let s2 = r.post(1).await;
    wait_for("commit of s2", LIMIT, &[&m], committed(s2.0, 1)).await;
    m.agg.as_ref().unwrap().stop();
    wait_for("the end of s2's first window", LIMIT, &[&m], || async {
        (on.rollup.windowStatus(s2.0).call().await.unwrap().phase == 4).then_some(())
    })
    .await;
    // A third party settles the expired commit while the miner is frozen:
    // the miner learns of its penalty from the chain's logs only.
    let (_, settler) = wallet(&anvil, 0);
    let receipt = ZkPowRollup::new(r.dep.rollup, settler)
        .settleNoProof(s2.0, me)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "anyone can settle an expired commit");
    m.agg.as_ref().unwrap().cont();
    wait_for("s2 verified in its second window", LIMIT, &[&m], committed(s2.0, 2)).await;
    wait_for("reveal of s2", LIMIT, &[&m], valid(s2.0)).await;

    // 3. SIGKILL between recording a transaction and its mining.
    let s3 = r.post(1).await;
    let db = m.db();
    wait_for("a transaction for s3 recorded", LIMIT, &[&m], || async {
        let txs = db.with_conn(|c| db::outbox::sequence_txs(c, "r1", s3.0)).unwrap();
        (!txs.is_empty()).then_some(())
    })
    .await;
    m.kill_aggregator();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    m.start_aggregator();
    wait_for("reveal of s3", LIMIT, &[&m], valid(s3.0)).await;

    // 4. The RPC endpoint goes away for 30 s; the daemon rides it out.
    let s4 = r.post(1).await;
    proxy.set_up(false);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(m.agg.as_mut().unwrap().0.try_wait().unwrap().is_none(), "the daemon keeps running without its node");
    proxy.set_up(true);
    wait_for("reveal of s4 after the outage", LIMIT, &[&m], valid(s4.0)).await;

    for s in [s1, s2, s3, s4] {
        let got = wait_for("rewarded", LIMIT, &[&m], || async { outcome(&m, "r1", s.0) }).await;
        assert_eq!(got, "rewarded", "sequence {}", s.0);
    }
    assert_eq!(on.rewards(me).await, 4 * REWARD);
    // The only penalty: the commit to s2's first window that was never
    // revealed, settled by someone else.
    assert_eq!(on.deposit_of(me).await, 2 * ETHER - PENALTY_NO_PROOF);
    let penalties: u128 =
        m.db().with_conn(|c| db::outbox::list_submissions(c, &[], None)).unwrap().iter().map(|s| s.penalty_wei).sum();
    assert_eq!(penalties, PENALTY_NO_PROOF, "the daemon booked the penalty another account imposed");
    assert_eq!(on.rollup.stateRoot().call().await.unwrap(), root_to_b256(&r.state.root()));
    assert_clean_outbox(&m, &on, 31337).await;
}

/// One daemon, two chains, two shapes; the control API and `zkpow status`
/// against it, with and without the admin token and with malformed input;
/// pause and resume; and a real Prometheus server scraping it whose view of
/// the verified sequences and their latency matches the daemon's own.
#[tokio::test(flavor = "multi_thread")]
async fn one_aggregator_serves_two_chains_and_two_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let l1 = spawn_chain(31337, 0.5);
    let l2 = spawn_chain(31338, 0.5);
    let mut r1 = deploy_rollup(&l1, 0, "r1", Shape::TEST, 8, 12, None).await;
    let mut r2 = deploy_rollup(&l2, 1, "r2", Shape::new(2, 5).unwrap(), 8, 12, None).await;
    bond(&l1, r1.dep.deposit, 2, ETHER).await;
    bond(&l2, r2.dep.deposit, 2, ETHER).await;
    let chains = [
        MinerChain { name: "l1", rpc_url: l1.endpoint(), anvil: &l1 },
        MinerChain { name: "l2", rpc_url: l2.endpoint(), anvil: &l2 },
    ];
    let admin_file = tmp.path().join("admin.token");
    std::fs::write(&admin_file, format!("{ADMIN}\n")).unwrap();
    let extra = format!("[api]\nadmin_token_file = \"{}\"\n", admin_file.display());
    let mut m = Miner::new(tmp.path(), "m", 2, &chains, &[&r1, &r2], &extra);
    let prom = Prometheus::start(tmp.path(), m.port);
    m.start_aggregator();
    m.start_prover();
    let mut posted = Vec::new();
    for _ in 0..2 {
        posted.push(("r1", r1.post(2).await));
        posted.push(("r2", r2.post(1).await));
    }
    for (name, s) in &posted {
        let got = wait_for(&format!("{name} {s:?} rewarded"), LIMIT, &[&m], || async { outcome(&m, name, s.0) }).await;
        assert_eq!(got, "rewarded");
    }
    for (anvil, r, chain_id) in [(&l1, &r1, 31337u64), (&l2, &r2, 31338)] {
        let on = Onchain::new(anvil, r);
        assert_eq!(on.rewards(m.address).await, 2 * REWARD, "{}", r.name);
        assert_eq!(on.rollup.stateRoot().call().await.unwrap(), root_to_b256(&r.state.root()), "{}", r.name);
        assert_clean_outbox(&m, &on, chain_id).await;
    }

    control_api_checks(&m).await;
    prometheus_matches_the_daemon(&m, &prom, 4).await;

    // Paused: nothing is leased or sent, and nothing is lost; resumed: done.
    let http = reqwest::Client::new();
    let r = http.post(m.api_url("/v1/pause")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let on1 = Onchain::new(&l1, &r1);
    let nonce = on1.nonce(m.address).await;
    let s5 = r1.post(1).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let seq = m.db().with_conn(|c| db::sequences::get_sequence(c, "r1", s5.0)).unwrap().expect("ingested while paused");
    assert!(matches!(seq.state, db::SequenceState::Posted | db::SequenceState::Proving), "{:?}", seq.state);
    assert_eq!(on1.nonce(m.address).await, nonce, "no transaction while paused");
    let st: serde_json::Value =
        http.get(m.api_url("/v1/status")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    assert_eq!(st["paused"], true);
    let r = http.post(m.api_url("/v1/resume")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got = wait_for("s5 rewarded after resume", LIMIT, &[&m], || async { outcome(&m, "r1", s5.0) }).await;
    assert_eq!(got, "rewarded");
}

const ADMIN: &str = "test-admin-token-0123456789abcdef";

async fn control_api_checks(m: &Miner) {
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: bool| {
        let mut req = http.request(method, m.api_url(path));
        if token {
            req = req.bearer_auth(ADMIN);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap_or(serde_json::Value::Null))
        }
    };
    let get = |path: &str, token: bool| call(reqwest::Method::GET, path, token);
    let post = |path: &str, token: bool| call(reqwest::Method::POST, path, token);
    let error_code = |body: &serde_json::Value| body["error"]["code"].as_str().unwrap_or("").to_string();

    let (st, body) = get("/readyz", false).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["status"], "ready");

    // Reads need the token (api.read_open is off); controls always do.
    for path in ["/v1/status", "/v1/provers", "/v1/sequences", "/v1/sequences/r1/1"] {
        let (st, body) = get(path, false).await;
        assert_eq!((st, error_code(&body).as_str()), (401, "unauthorized"), "{path}: {body}");
    }
    for path in ["/v1/pause", "/v1/resume", "/v1/sequences/r1/1/resend"] {
        let (st, body) = post(path, false).await;
        assert_eq!((st, error_code(&body).as_str()), (401, "unauthorized"), "{path}: {body}");
    }

    let (st, status) = get("/v1/status", true).await;
    assert_eq!(st, 200);
    assert_eq!(status["paused"], false);
    for r in status["rollups"].as_array().unwrap() {
        assert_eq!(r["sequences"]["verified"], 2, "{r}");
    }
    let (_, provers) = get("/v1/provers", true).await;
    assert_eq!(provers["provers"].as_array().unwrap().len(), 1, "{provers}");

    let (st, page) = get("/v1/sequences?rollup=r1&limit=1", true).await;
    assert_eq!(st, 200);
    assert_eq!(page["sequences"].as_array().unwrap().len(), 1);
    assert_eq!(page["sequences"][0]["init_batch"], 3, "newest first: {page}");
    assert_eq!(page["next_offset"], 1);
    let (_, page2) = get("/v1/sequences?rollup=r1&limit=1&offset=1", true).await;
    assert_eq!(page2["sequences"][0]["init_batch"], 1);
    let (_, verified) = get("/v1/sequences?state=verified", true).await;
    assert_eq!(verified["sequences"].as_array().unwrap().len(), 4);

    let (st, detail) = get("/v1/sequences/r1/1", true).await;
    assert_eq!(st, 200, "{detail}");
    let purposes: Vec<&str> =
        detail["transactions"].as_array().unwrap().iter().map(|t| t["purpose"].as_str().unwrap()).collect();
    assert_eq!(purposes, ["commit", "reveal", "claim"], "{detail}");
    assert_eq!(detail["submission"]["outcome"], "rewarded");
    let times: Vec<i64> = detail["timeline"].as_array().unwrap().iter().map(|e| e["at"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]) && times.len() >= 6, "{detail}");

    // Malformed input: clear 4xx errors in the one shape.
    for (path, want, code) in [
        ("/v1/sequences?state=bogus", 400, "invalid_request"),
        ("/v1/sequences?limit=0", 400, "invalid_request"),
        ("/v1/sequences?limit=many", 400, "invalid_request"),
        ("/v1/sequences?colour=red", 400, "invalid_request"),
        ("/v1/sequences?rollup=nope", 404, "not_found"),
        ("/v1/sequences/r1/abc", 400, "invalid_request"),
        ("/v1/sequences/r1/999", 404, "not_found"),
        ("/v1/sequences/nope/1", 404, "not_found"),
        ("/v1/nothing-here", 404, "not_found"),
    ] {
        let (st, body) = get(path, true).await;
        assert_eq!((st, error_code(&body).as_str()), (want, code), "{path}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap_or("").is_empty(), "{path}: {body}");
    }
    // An over-long request target, on a real socket: refused before routing,
    // with or without a token, in the same shape.
    let long = format!("/v1/sequences?rollup={}", "r".repeat(zkpow::api::limits::MAX_URI_BYTES));
    for token in [true, false] {
        let (st, body) = get(&long, token).await;
        assert_eq!((st, error_code(&body).as_str()), (414, "uri_too_long"), "{body}");
    }
    let (st, body) = post("/v1/sequences/r1/1/resend", true).await;
    assert_eq!((st, error_code(&body).as_str()), (409, "already_settled"), "{body}");
    let (st, body) = post("/v1/sequences/r1/x/resend", true).await;
    assert_eq!((st, error_code(&body).as_str()), (400, "invalid_request"), "{body}");

    // Every operation in the OpenAPI description is served (none falls
    // through to "no route"), and what is served is described.
    let (st, spec) = get("/v1/openapi.json", false).await;
    assert_eq!(st, 200);
    let mut described = std::collections::BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            described.insert(format!("{} {path}", method.to_uppercase()));
            let concrete = path.replace("{rollup}", "r1").replace("{id}", "1");
            let req = match method.as_str() {
                "get" => http.get(m.api_url(&concrete)),
                "post" => http.post(m.api_url(&concrete)).json(&serde_json::json!({})),
                other => panic!("unexpected method {other}"),
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            assert!(!(status == 404 && text.contains("no route")), "{method} {path} is described but not served");
        }
    }
    for served in [
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /v1/openapi.json",
        "GET /v1/status",
        "GET /v1/provers",
        "GET /v1/sequences",
        "GET /v1/sequences/{rollup}/{id}",
        "POST /v1/sequences/{rollup}/{id}/resend",
        "POST /v1/pause",
        "POST /v1/resume",
        "POST /v1/prover/register",
        "POST /v1/prover/claim",
        "POST /v1/prover/heartbeat",
        "POST /v1/prover/submit",
        "POST /v1/prover/fail",
        "POST /v1/prover/release",
    ] {
        assert!(described.contains(served), "{served} is served but not described");
    }

    // `zkpow status`, as a person and as a script sees it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zkpow"))
        .args(["--config", m.config.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("r2") && l.split_whitespace().nth(6) == Some("2")), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zkpow"))
        .args(["--config", m.config.to_str().unwrap(), "status", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["rollups"][0]["sequences"]["verified"], 2);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zkpow"))
        .args(["--config", m.config.to_str().unwrap(), "status", "--token-file", "/nonexistent/token"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token-file"));
}

/// A real Prometheus server scraping the aggregator every second.
struct Prometheus {
    _proc: crate::common::procs::Proc,
    port: u16,
}

impl Prometheus {
    fn start(dir: &std::path::Path, target_port: u16) -> Prometheus {
        let port = crate::common::procs::free_port();
        let cfg = dir.join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: zkpow\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package, installed by `make test`)");
        Prometheus { _proc: crate::common::procs::Proc(child), port }
    }

    async fn query(&self, expr: &str) -> Option<f64> {
        let encoded: String = expr
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let url = format!("http://127.0.0.1:{}/api/v1/query?query={encoded}", self.port);
        let r = reqwest::get(url).await.ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

/// Prometheus's `histogram_quantile` over cumulative (le, count) buckets.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            return prev.0 + (le - prev.0) * (rank - prev.1) / (count - prev.1);
        }
        prev = (le, count);
    }
    f64::NAN
}

async fn prometheus_matches_the_daemon(m: &Miner, prom: &Prometheus, verified: u64) {
    let count_expr = "sum(zkpow_sequence_latency_seconds_count)";
    wait_for("Prometheus to scrape every verification", LIMIT, &[m], || async {
        (prom.query(count_expr).await == Some(verified as f64)).then_some(())
    })
    .await;
    // The daemon's own view: its status API and its /metrics text.
    let status: serde_json::Value = reqwest::Client::new()
        .get(m.api_url("/v1/status"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let own: u64 =
        status["rollups"].as_array().unwrap().iter().map(|r| r["sequences"]["verified"].as_u64().unwrap()).sum();
    assert_eq!(own, verified);
    let text = reqwest::get(m.api_url("/metrics")).await.unwrap().text().await.unwrap();
    let mut buckets: std::collections::BTreeMap<String, f64> = Default::default();
    for line in text.lines().filter(|l| l.starts_with("zkpow_sequence_latency_seconds_bucket{")) {
        let le = line.split("le=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *buckets.entry(le).or_default() += v;
    }
    let mut buckets: Vec<(f64, f64)> = buckets
        .into_iter()
        .map(|(le, c)| (if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() }, c))
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ours = histogram_quantile(0.5, &buckets);
    let theirs = prom
        .query("histogram_quantile(0.5, sum by (le) (zkpow_sequence_latency_seconds_bucket))")
        .await
        .expect("a latency quantile from Prometheus");
    assert!(ours.is_finite() && ours > 0.0, "{ours}");
    assert!((ours - theirs).abs() < 1e-9, "median latency: daemon {ours} s, Prometheus {theirs} s");
}

/// Protocol v2's pipelined windows: ten sequences posted at once are all
/// committed while none of them is verified yet, and once their reveal
/// phases open they are verified back to back, each in one of the blocks
/// right after its predecessor's.
#[tokio::test(flavor = "multi_thread")]
async fn ten_sequences_are_committed_in_parallel_and_verified_back_to_back() {
    use alloy::providers::Provider;
    use alloy::rpc::types::Filter;
    use alloy::sol_types::SolEvent;
    use zkpow::db::SequenceState;

    let tmp = tempfile::tempdir().unwrap();
    let anvil = spawn_chain(31337, 0.5);
    let (t1, t2) = (12u32, 16u32);
    let mut r = deploy_rollup(&anvil, 0, "r1", Shape::TEST, t1, t2, None).await;
    let on = Onchain::new(&anvil, &r);
    // Ten bonds of 0.5 ETH at once.
    bond(&anvil, r.dep.deposit, 2, 10 * ETHER).await;
    let chains = [MinerChain { name: "l1", rpc_url: anvil.endpoint(), anvil: &anvil }];
    // Proving first, with the sender off, so that all ten proofs are ready
    // when it starts: the commits then go out together.
    let mut m = Miner::new(tmp.path(), "m", 2, &chains, &[&r], "[sender]\nenabled = false\n");
    m.start_aggregator();
    m.start_prover();
    let mut seqs = Vec::new();
    for _ in 0..10 {
        seqs.push(r.post(1).await);
    }
    let db = m.db();
    wait_for("all ten sequences proven", LIMIT, &[&m], || async {
        let proven = seqs
            .iter()
            .filter(|s| {
                db.with_conn(|c| db::sequences::get_sequence(c, "r1", s.0))
                    .ok()
                    .flatten()
                    .is_some_and(|q| q.state == SequenceState::Proven)
            })
            .count();
        (proven == seqs.len()).then_some(())
    })
    .await;
    m.kill_aggregator();
    let text = std::fs::read_to_string(&m.config).unwrap().replace("enabled = false", "enabled = true");
    std::fs::write(&m.config, text).unwrap();
    m.start_aggregator();
    let last = seqs.last().unwrap().1;
    wait_for("all ten verified", LIMIT, &[&m], || async { (on.last_verified().await >= last).then_some(()) }).await;

    let logs = |sig| {
        let f = Filter::new().address(r.dep.rollup).event_signature(sig).from_block(0);
        let p = on.provider.clone();
        async move { p.get_logs(&f).await.unwrap() }
    };
    let commits: Vec<(u64, u64)> = logs(ZkPowRollup::ProofHashSubmitted::SIGNATURE_HASH)
        .await
        .iter()
        .map(|l| {
            let e = ZkPowRollup::ProofHashSubmitted::decode_log(&l.inner).unwrap();
            assert_eq!(e.miner, m.address);
            assert_eq!(e.windowId, 1, "every sequence verified in its first window");
            (e.initNumBatch, l.block_number.unwrap())
        })
        .collect();
    let verified: Vec<(u64, u64)> = logs(ZkPowRollup::SequenceVerified::SIGNATURE_HASH)
        .await
        .iter()
        .map(|l| (ZkPowRollup::SequenceVerified::decode_log(&l.inner).unwrap().initNumBatch, l.block_number.unwrap()))
        .collect();
    assert_eq!(commits.iter().map(|c| c.0).collect::<Vec<_>>(), seqs.iter().map(|s| s.0).collect::<Vec<_>>());
    assert_eq!(verified.iter().map(|v| v.0).collect::<Vec<_>>(), seqs.iter().map(|s| s.0).collect::<Vec<_>>());
    // In flight together: every commit was mined before the first verification.
    let last_commit = commits.iter().map(|c| c.1).max().unwrap();
    assert!(last_commit < verified[0].1, "commits {commits:?} vs verifications {verified:?}");
    // Back to back: each one within two blocks of its predecessor (the
    // sender reads the chain every 200 ms, blocks come every 500 ms).
    let gaps: Vec<u64> = verified.windows(2).map(|w| w[1].1 - w[0].1).collect();
    eprintln!("verification blocks {verified:?}, gaps {gaps:?}");
    assert!(gaps.iter().all(|g| (1..=2).contains(g)), "gaps between verifications {gaps:?}");

    for s in &seqs {
        let got = wait_for("rewarded", LIMIT, &[&m], || async { outcome(&m, "r1", s.0) }).await;
        assert_eq!(got, "rewarded", "sequence {}", s.0);
    }
    assert_eq!(on.deposit_of(m.address).await, 10 * ETHER, "nobody honest is punished");
    assert_eq!(on.deposit.lockedOf(m.address).call().await.unwrap().to::<u128>(), 0, "every bond released");
    assert_eq!(on.rollup.stateRoot().call().await.unwrap(), root_to_b256(&r.state.root()));
    assert_clean_outbox(&m, &on, 31337).await;
}
