//! Failover between two aggregator processes of one miner on one PostgreSQL
//! database: the lease and its fence against a real database, then real
//! processes killed and frozen around a window; and SQLite refusing a
//! second process.

use std::time::{Duration, Instant};

use zkpow::circuit::Shape;
use zkpow::db::lease::{Acquire, Fence};
use zkpow::db::{self, Db, DbError};

use crate::common::net::{
    assert_clean_outbox, bond, deploy_rollup, outcome, spawn_chain, wait_for, Miner, MinerChain, Onchain, ETHER,
};
use crate::common::procs::{free_port, zkpow, Proc};
use crate::common::{postgres_db, sqlite_db};

const LIMIT: Duration = Duration::from_secs(180);
/// Short terms so the tests need not wait long for a takeover.
const FAILOVER: &str = "[failover]\nlease_ms = 2000\nrenew_ms = 400\n";

// ---- the lease and its fence --------------------------------------------------

fn lease_terms_and_the_fence(db: &Db) {
    let ttl = Duration::from_millis(400);
    let acquire = |holder: &str| db.with_conn(|c| db::lease::try_acquire(c, "aggregator", holder, ttl)).unwrap();
    let fence = |holder: &str, epoch: i64| Fence::new("aggregator", holder, epoch, Instant::now() + ttl);
    let check = |f: &Fence| db.with_conn(|c| db::transaction(c, |c| db::lease::check_fence(c, f)));

    assert_eq!(acquire("a"), Acquire::Acquired { epoch: 1, previous: None });
    match acquire("b") {
        Acquire::Held { holder, epoch: 1, remaining_ms } => {
            assert_eq!(holder, "a");
            assert!(remaining_ms > 0 && remaining_ms <= 400, "{remaining_ms}");
        }
        other => panic!("b must wait for a's term: {other:?}"),
    }
    let a = fence("a", 1);
    check(&a).expect("a's term is current");
    assert!(db.with_conn(|c| db::lease::renew(c, "aggregator", "a", 1, ttl)).unwrap());

    // a stops renewing; once its lease expired, b takes over with a new epoch.
    std::thread::sleep(Duration::from_millis(500));
    assert!(matches!(check(&a), Err(DbError::Fenced(_))), "an expired term writes nothing");
    assert_eq!(acquire("b"), Acquire::Acquired { epoch: 2, previous: Some("a".into()) });
    let b = fence("b", 2);
    check(&b).expect("b's term is current");
    // The old term can neither renew nor write, even with a live local clock.
    assert!(!db.with_conn(|c| db::lease::renew(c, "aggregator", "a", 1, ttl)).unwrap());
    let a_again = fence("a", 1);
    match check(&a_again) {
        Err(DbError::Fenced(msg)) => assert!(msg.contains("b holds epoch 2"), "{msg}"),
        other => panic!("a deposed term must be fenced: {other:?}"),
    }
    // A term the local clock says has lapsed is fenced without asking.
    let lapsed = Fence::new("aggregator", "b", 2, Instant::now());
    assert!(matches!(check(&lapsed), Err(DbError::Fenced(_))));

    // A clean shutdown hands over at once.
    db.with_conn(|c| db::lease::release(c, "aggregator", "b", 2)).unwrap();
    assert_eq!(acquire("c"), Acquire::Acquired { epoch: 3, previous: Some("b".into()) });
    // Releasing a term that is over changes nothing.
    db.with_conn(|c| db::lease::release(c, "aggregator", "b", 2)).unwrap();
    assert!(matches!(acquire("d"), Acquire::Held { epoch: 3, .. }));
}

#[test]
fn lease_terms_and_the_fence_postgres() {
    let pg = postgres_db();
    lease_terms_and_the_fence(pg.db());
}

#[test]
fn lease_terms_and_the_fence_sqlite() {
    let (db, _dir) = sqlite_db();
    lease_terms_and_the_fence(&db);
}

// ---- two aggregator processes ----------------------------------------------------

/// An aggregator process of the miner `m` listening on `port`.
struct Agg {
    proc: Option<Proc>,
    port: u16,
    log: std::path::PathBuf,
}

impl Agg {
    fn start(m: &Miner, name: &str, port: u16) -> Agg {
        let log = m.dir.join(format!("{name}.log"));
        let listen = format!("127.0.0.1:{port}");
        let proc = zkpow(&m.config, &["aggregator"], &log, &[("ZKPOW_AGGREGATOR__LISTEN", &listen)]);
        Agg { proc: Some(proc), port, log }
    }

    /// `/readyz`: (HTTP status, failover role), None while nothing answers.
    async fn role(&self) -> Option<(u16, String, i64)> {
        let r = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/readyz", self.port))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.ok()?;
        let role = body["failover"]["role"].as_str()?.to_string();
        Some((status, role, body["failover"]["epoch"].as_i64().unwrap_or(0)))
    }

    async fn wait_role(&self, role: &str, m: &Miner) -> i64 {
        let what = format!("{} to be {role}", self.log.display());
        wait_for(&what, LIMIT, &[m], || async {
            self.role().await.and_then(|(_, r, epoch)| (r == role).then_some(epoch))
        })
        .await
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| p.0.try_wait().ok().flatten().is_none())
    }
}

/// One chain, one rollup, one miner whose two aggregators share a fresh
/// PostgreSQL database, each with a prover of its own.
struct Setup {
    _tmp: tempfile::TempDir,
    _pg: crate::common::TestPg,
    anvil: alloy::node_bindings::AnvilInstance,
    rollup: crate::common::net::TestRollup,
    miner: Miner,
    provers: Vec<Proc>,
}

async fn setup(t1: u32, t2: u32) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let pg = postgres_db();
    let anvil = spawn_chain(31337, 0.5);
    let rollup = deploy_rollup(&anvil, 0, "r1", Shape::TEST, t1, t2, None).await;
    bond(&anvil, rollup.dep.deposit, 2, 2 * ETHER).await;
    let chains = [MinerChain { name: "l1", rpc_url: anvil.endpoint(), anvil: &anvil }];
    let mut miner = Miner::new(tmp.path(), "m", 2, &chains, &[&rollup], FAILOVER);
    miner.use_database(pg.url());
    Setup { _tmp: tmp, _pg: pg, anvil, rollup, miner, provers: Vec::new() }
}

impl Setup {
    /// A prover that serves the aggregator on `port` only.
    fn prover_for(&mut self, port: u16) {
        let name = format!("p{port}");
        let log = self.miner.dir.join(format!("{name}.log"));
        let url = format!("http://127.0.0.1:{port}");
        self.provers.push(zkpow(
            &self.miner.config,
            &["prover"],
            &log,
            &[("ZKPOW_PROVER__NAME", &name), ("ZKPOW_PROVER__AGGREGATOR_URL", &url)],
        ));
    }

    /// Starts the active aggregator, then the standby; a prover for each.
    async fn two_aggregators(&mut self) -> (Agg, Agg) {
        let a = Agg::start(&self.miner, "agg-a", free_port());
        assert_eq!(a.wait_role("active", &self.miner).await, 1, "the first process takes the lease");
        let b = Agg::start(&self.miner, "agg-b", free_port());
        b.wait_role("standby", &self.miner).await;
        let (st, _, _) = b.role().await.unwrap();
        assert_eq!(st, 503, "a standby is not ready: a load balancer sends provers to the active one");
        self.prover_for(a.port);
        self.prover_for(b.port);
        (a, b)
    }

    async fn verified(&self, s: (u64, u64)) {
        let on = Onchain::new(&self.anvil, &self.rollup);
        let me = self.miner.address;
        wait_for("the sequence verified by our miner", LIMIT, &[&self.miner], || async {
            on.commit_of(s.0, me).await.valid.then_some(())
        })
        .await;
    }

    /// Nothing sent twice, nonces contiguous, every sequence rewarded, no
    /// penalty, and the chain's state is the executor's.
    async fn assert_clean(&self, sequences: &[(u64, u64)]) {
        let on = Onchain::new(&self.anvil, &self.rollup);
        for s in sequences {
            let got = wait_for("rewarded", LIMIT, &[&self.miner], || async { outcome(&self.miner, "r1", s.0) }).await;
            assert_eq!(got, "rewarded", "sequence {}", s.0);
        }
        assert_eq!(on.deposit_of(self.miner.address).await, 2 * ETHER, "nobody was punished");
        assert_eq!(on.rollup.stateRoot().call().await.unwrap(), zkpow::chain::root_to_b256(&self.rollup.state.root()));
        assert_clean_outbox(&self.miner, &on, 31337).await;
        // Witnesses are the largest rows; verified sequences keep none.
        let db = self.miner.db();
        for s in sequences {
            let what = format!("the witnesses of verified sequence {} cleared", s.0);
            wait_for(&what, Duration::from_secs(60), &[&self.miner], || async {
                let batches = db.with_conn(|c| db::sequences::sequence_batches(c, "r1", s.0)).unwrap();
                (!batches.is_empty() && batches.iter().all(|b| b.witness.is_none())).then_some(())
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standby_reveals_in_the_window_the_killed_active_one_committed_to() {
    // T1 = 10 blocks of 0.5 s: the kill lands well before the reveal phase.
    let mut s = setup(10, 30).await;
    let (mut a, b) = s.two_aggregators().await;
    let on = Onchain::new(&s.anvil, &s.rollup);
    let me = s.miner.address;

    let s1 = s.rollup.post(1).await;
    wait_for("the commit of s1", LIMIT, &[&s.miner], || async {
        (on.commit_of(s1.0, me).await.windowId == 1).then_some(())
    })
    .await;
    a.proc.take(); // SIGKILL between the commit and the reveal
    let killed = Instant::now();
    assert!(!on.commit_of(s1.0, me).await.valid, "killed before the reveal");
    assert_eq!(b.wait_role("active", &s.miner).await, 2, "the standby takes the next epoch");
    let takeover = killed.elapsed();
    s.verified(s1).await;
    let commit = on.commit_of(s1.0, me).await;
    assert_eq!(commit.windowId, 1, "revealed in the window the killed process committed to");
    assert!(b.log_text().contains("previous="), "the takeover names the previous holder");

    // The new active process proves and sends on its own.
    let s2 = s.rollup.post(2).await;
    s.verified(s2).await;
    s.assert_clean(&[s1, s2]).await;
    eprintln!("takeover after SIGKILL: {takeover:?} (lease 2 s)");
    assert!(takeover < Duration::from_secs(15), "took over within the lease time and a start: {takeover:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_active_aggregator_is_deposed_and_stands_by_without_sending() {
    let mut s = setup(10, 30).await;
    let (mut a, b) = s.two_aggregators().await;
    let s1 = s.rollup.post(1).await;
    s.verified(s1).await;

    // Frozen past the lease: the standby takes over and works alone.
    a.proc.as_ref().unwrap().stop();
    assert_eq!(b.wait_role("active", &s.miner).await, 2);
    let s2 = s.rollup.post(1).await;
    let on = Onchain::new(&s.anvil, &s.rollup);
    let me = s.miner.address;
    wait_for("the commit of s2 by the new active process", LIMIT, &[&s.miner], || async {
        (on.commit_of(s2.0, me).await.windowId == 1).then_some(())
    })
    .await;

    // Thawed, the old process finds its term over and stands by.
    let before = a.log_text().len();
    a.proc.as_ref().unwrap().cont();
    a.wait_role("standby", &s.miner).await;
    assert!(a.alive(), "it stands by instead of exiting");
    s.verified(s2).await;
    let s3 = s.rollup.post(1).await;
    s.verified(s3).await;
    assert_eq!(b.role().await.map(|r| r.1), Some("active".into()), "the new active process keeps its term");

    let after = a.log_text()[before..].to_string();
    assert!(after.contains("deposed") || after.contains("lapsed"), "it noticed it was deposed:\n{after}");
    assert!(after.contains("standing by"), "{after}");
    for sent in ["transaction signed and recorded", "re-broadcast", "fee bumped"] {
        assert!(!after.contains(sent), "the deposed process sent something ({sent}):\n{after}");
    }
    s.assert_clean(&[s1, s2, s3]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_serves_one_aggregator_process_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let anvil = spawn_chain(31337, 0.5);
    let rollup = deploy_rollup(&anvil, 0, "r1", Shape::TEST, 10, 20, None).await;
    let chains = [MinerChain { name: "l1", rpc_url: anvil.endpoint(), anvil: &anvil }];
    let mut m = Miner::new(tmp.path(), "m", 2, &chains, &[&rollup], "");
    m.start_aggregator();
    let first = Agg { proc: None, port: m.port, log: m.agg_log() };
    assert_eq!(first.wait_role("single", &m).await, 0);

    let mut second = Agg::start(&m, "second", free_port());
    let started = Instant::now();
    let code = loop {
        if let Some(code) = second.proc.as_mut().unwrap().0.try_wait().unwrap() {
            break code;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the second process did not give up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!code.success());
    let log = second.log_text();
    assert!(log.contains("serves one aggregator process") && log.contains("PostgreSQL"), "{log}");
    assert!(first.role().await.is_some(), "the first process keeps running");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aggregator_that_loses_the_database_is_replaced_and_stands_by_when_it_returns() {
    let s = setup(10, 30).await;
    // The first process reaches PostgreSQL through a proxy the test cuts.
    let proxy = crate::common::proxy::Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = s._pg.url().replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(proxied, s._pg.url(), "the test database URL names 127.0.0.1:5432");
    let log = s.miner.dir.join("agg-a.log");
    let listen = format!("127.0.0.1:{}", free_port());
    let a = Agg {
        proc: Some(zkpow(
            &s.miner.config,
            &["aggregator"],
            &log,
            &[("ZKPOW_AGGREGATOR__LISTEN", &listen), ("ZKPOW_AGGREGATOR__DATABASE_URL", &proxied)],
        )),
        port: listen.rsplit(':').next().unwrap().parse().unwrap(),
        log,
    };
    assert_eq!(a.wait_role("active", &s.miner).await, 1);
    let b = Agg::start(&s.miner, "agg-b", free_port());
    b.wait_role("standby", &s.miner).await;

    proxy.set_up(false);
    let cut = Instant::now();
    assert_eq!(b.wait_role("active", &s.miner).await, 2, "the standby takes over from a process without its database");
    eprintln!("takeover after the database connection was cut: {:?}", cut.elapsed());
    wait_for("the cut-off process gives up its term", LIMIT, &[&s.miner], || async {
        a.log_text().contains("lapsed").then_some(())
    })
    .await;

    proxy.set_up(true);
    a.wait_role("standby", &s.miner).await;
    assert_eq!(b.role().await.map(|r| (r.1, r.2)), Some(("active".into(), 2)), "the new term stands");
}
