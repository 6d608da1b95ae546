//! The aggregator SIGKILLed at random points while twenty sequences of two
//! rollups (one per chain) are in flight: real anvil chains (half-second
//! blocks), real Groth16 proofs of the test shape, the real `zkpow
//! aggregator` and `zkpow prover` processes on SQLite.
//!
//! The other restart tests kill at chosen points (after a commit, between
//! recording and mining a transaction). Here a seeded RNG draws how long the
//! aggregator lives before each kill and how long it stays dead, so over
//! many runs the kills land anywhere: while ingesting, executing, proving,
//! signing, broadcasting, committing, revealing or claiming. The seed is
//! printed; `ZKPOW_TEST_KILL_SEED=<seed>` repeats a schedule.
//!
//! Whatever the schedule, the end state must be the same: every sequence
//! verified and rewarded, no transaction sent twice for one step (checked
//! in the outbox and, independently, in the rollups' events), the outbox's
//! nonces contiguous and equal to the account's nonce on chain, and no
//! penalty for the miner, which is honest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use rand::{RngExt, SeedableRng};
use zkpow::chain::bindings::{MinerDeposit, ZkPowRollup};
use zkpow::chain::root_to_b256;
use zkpow::circuit::Shape;
use zkpow::db;

use crate::common::net::{
    assert_clean_outbox, bond, deploy_rollup, outcome, spawn_chain, wait_for, Miner, MinerChain, Onchain, TestRollup,
    ETHER,
};

const REWARD: u128 = ETHER / 10;
/// Enough for every sequence's bond (half an ether) of a chain to be locked at once.
const BOND: u128 = 10 * ETHER;
const SEQUENCES_PER_ROLLUP: usize = 10;
const KILLS: usize = 8;
/// How long the aggregator lives before a kill, and stays dead after it
/// (seconds). The longest death plus a start stays well inside T2 (20 s),
/// so an honest miner killed after its commit can always still reveal.
const LIFE: std::ops::Range<f64> = 0.3..9.0;
const DEATH: std::ops::Range<f64> = 0.05..2.5;
const LIMIT: Duration = Duration::from_secs(300);

/// What a kill found, for the checks that the kills hit work in progress.
struct Kill {
    in_flight: u64,
    outbox_rows: usize,
}

/// Batches posted but not yet verified on chain, over both rollups.
async fn in_flight(rollups: &[(&Onchain, u64)]) -> u64 {
    let mut n = 0;
    for (on, last_posted) in rollups {
        n += last_posted.saturating_sub(on.last_verified().await);
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn random_sigkills_of_the_aggregator_lose_nothing_and_send_nothing_twice() {
    let seed: u64 = match std::env::var("ZKPOW_TEST_KILL_SEED") {
        Ok(s) => s.parse().expect("ZKPOW_TEST_KILL_SEED is a u64"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    };
    eprintln!("kill schedule seed {seed} (ZKPOW_TEST_KILL_SEED={seed} repeats it)");
    let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(seed);

    let tmp = tempfile::tempdir().unwrap();
    // Two chains, a rollup on each: one daemon, two nonce sequences.
    let (l1, l2) = (spawn_chain(31337, 0.5), spawn_chain(31338, 0.5));
    let mut r1 = deploy_rollup(&l1, 0, "r1", Shape::TEST, 10, 40, None).await;
    let mut r2 = deploy_rollup(&l2, 1, "r2", Shape::TEST, 10, 40, None).await;
    let (on1, on2) = (Onchain::new(&l1, &r1), Onchain::new(&l2, &r2));
    bond(&l1, r1.dep.deposit, 2, BOND).await;
    bond(&l2, r2.dep.deposit, 2, BOND).await;
    let chains = [
        MinerChain { name: "l1", rpc_url: l1.endpoint(), anvil: &l1 },
        MinerChain { name: "l2", rpc_url: l2.endpoint(), anvil: &l2 },
    ];
    let mut m = Miner::new(tmp.path(), "m", 2, &chains, &[&r1, &r2], "");
    m.start_aggregator();
    m.start_prover();
    let started = Instant::now();

    // The sequencer posts at random intervals while the killer works, so
    // kills find sequences at every stage.
    let mut post_rng = rand::rngs::ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    let last_posted = std::sync::Mutex::new([0u64; 2]);
    let poster = async {
        let mut posted: Vec<(usize, (u64, u64))> = Vec::new();
        for i in 0..2 * SEQUENCES_PER_ROLLUP {
            let which = i % 2;
            let r: &mut TestRollup = if which == 0 { &mut r1 } else { &mut r2 };
            let s = r.post(post_rng.random_range(1..=2)).await;
            last_posted.lock().unwrap()[which] = s.1;
            posted.push((which, s));
            tokio::time::sleep(Duration::from_secs_f64(post_rng.random_range(0.2..3.0))).await;
        }
        posted
    };
    let killer = async {
        let mut kills = Vec::new();
        for _ in 0..KILLS {
            let lived = Duration::from_secs_f64(rng.random_range(LIFE));
            tokio::time::sleep(lived).await;
            let outbox_rows: usize = [31337, 31338]
                .iter()
                .map(|&chain| m.db().with_conn(|c| db::outbox::sender_txs(c, chain, &m.address.0 .0)).unwrap().len())
                .sum();
            m.kill_aggregator();
            let at = started.elapsed();
            let last = *last_posted.lock().unwrap();
            let in_flight = in_flight(&[(&on1, last[0]), (&on2, last[1])]).await;
            let dead = Duration::from_secs_f64(rng.random_range(DEATH));
            tokio::time::sleep(dead).await;
            m.start_aggregator();
            eprintln!(
                "kill {} at {:.1} s after {:.1} s up: {in_flight} batches posted and unverified, {outbox_rows} \
                 outbox rows; down {:.2} s",
                kills.len() + 1,
                at.as_secs_f64(),
                lived.as_secs_f64(),
                dead.as_secs_f64()
            );
            kills.push(Kill { in_flight, outbox_rows });
        }
        kills
    };
    let (posted, kills) = tokio::join!(poster, killer);
    eprintln!("{} kills done at {:.1} s; draining", kills.len(), started.elapsed().as_secs_f64());

    // The kills hit work in progress, not an idle daemon: most of them
    // found batches unverified on chain, and transactions went out between
    // the first kill and the last.
    let busy = kills.iter().filter(|k| k.in_flight > 0).count();
    assert!(busy * 2 >= kills.len(), "only {busy} of {} kills found work in flight", kills.len());
    let (first, last) = (kills.first().unwrap(), kills.last().unwrap());
    assert!(first.outbox_rows < last.outbox_rows, "no transaction was sent between the first and the last kill");

    let me = m.address;
    let roots = [root_to_b256(&r1.state.root()), root_to_b256(&r2.state.root())];
    for (which, on) in [(0usize, &on1), (1, &on2)] {
        let last_batch = posted.iter().filter(|p| p.0 == which).map(|p| p.1 .1).max().unwrap();
        let what = format!("rollup r{} verified up to batch {last_batch}", which + 1);
        wait_for(&what, LIMIT, &[&m], || async { (on.last_verified().await >= last_batch).then_some(()) }).await;
        assert_eq!(on.rollup.stateRoot().call().await.unwrap(), roots[which], "{what}: state root");
    }
    for (which, s) in &posted {
        let name = if *which == 0 { "r1" } else { "r2" };
        let what = format!("{name} sequence {}..{} rewarded", s.0, s.1);
        let got = wait_for(&what, LIMIT, &[&m], || async { outcome(&m, name, s.0) }).await;
        assert_eq!(got, "rewarded", "{what}");
    }
    eprintln!("every sequence verified and rewarded at {:.1} s", started.elapsed().as_secs_f64());

    // The outbox: one row per nonce, contiguous, as many as the chain
    // counts; every row confirmed; one transaction per step.
    assert_clean_outbox(&m, &on1, 31337).await;
    assert_clean_outbox(&m, &on2, 31338).await;

    // The chain's own record, independent of the outbox: per sequence and
    // window at most one commit of ours, exactly one accepted proof and one
    // reward per sequence, and no punishment.
    for (which, on, r) in [(0usize, &on1, &r1), (1, &on2, &r2)] {
        let logs = |sig| {
            let f = Filter::new().address(r.dep.rollup).event_signature(sig).from_block(0);
            let p = on.provider.clone();
            async move { p.get_logs(&f).await.unwrap() }
        };
        let mut commits: BTreeMap<(u64, u32), usize> = BTreeMap::new();
        for l in logs(ZkPowRollup::ProofHashSubmitted::SIGNATURE_HASH).await {
            let e = ZkPowRollup::ProofHashSubmitted::decode_log(&l.inner).unwrap();
            assert_eq!(e.miner, me);
            *commits.entry((e.initNumBatch, e.windowId)).or_default() += 1;
        }
        assert!(commits.values().all(|&n| n == 1), "r{}: a commit sent twice for one window: {commits:?}", which + 1);
        let per_sequence = |sig, decode: fn(&alloy::rpc::types::Log) -> (u64, Address)| {
            let logs = logs(sig);
            async move {
                let mut n: BTreeMap<u64, usize> = BTreeMap::new();
                for l in logs.await {
                    let (init, miner) = decode(&l);
                    assert_eq!(miner, me);
                    *n.entry(init).or_default() += 1;
                }
                n
            }
        };
        let accepted = per_sequence(ZkPowRollup::ProofAccepted::SIGNATURE_HASH, |l| {
            let e = ZkPowRollup::ProofAccepted::decode_log(&l.inner).unwrap();
            (e.initNumBatch, e.miner)
        })
        .await;
        let rewarded = per_sequence(ZkPowRollup::Rewarded::SIGNATURE_HASH, |l| {
            let e = ZkPowRollup::Rewarded::decode_log(&l.inner).unwrap();
            (e.initNumBatch, e.miner)
        })
        .await;
        let inits: Vec<u64> = posted.iter().filter(|p| p.0 == which).map(|p| p.1 .0).collect();
        let once: BTreeMap<u64, usize> = inits.iter().map(|&i| (i, 1)).collect();
        assert_eq!(accepted, once, "r{}: one accepted proof per sequence", which + 1);
        assert_eq!(rewarded, once, "r{}: one reward per sequence", which + 1);
        let punished = logs(ZkPowRollup::Punished::SIGNATURE_HASH).await;
        assert!(punished.is_empty(), "r{}: the honest miner was punished: {punished:?}", which + 1);
    }
    for (on, r) in [(&on1, &r1), (&on2, &r2)] {
        let filter =
            Filter::new().address(r.dep.deposit).event_signature(MinerDeposit::Slashed::SIGNATURE_HASH).from_block(0);
        let slashed = on.provider.get_logs(&filter).await.unwrap();
        assert!(slashed.is_empty(), "{}: slashed: {slashed:?}", r.name);
        assert_eq!(on.deposit_of(me).await, BOND, "{}: the deposit is whole", r.name);
        assert_eq!(on.deposit.lockedOf(me).call().await.unwrap().to::<u128>(), 0, "{}: every bond released", r.name);
        assert_eq!(on.rewards(me).await, SEQUENCES_PER_ROLLUP as u128 * REWARD, "{}", r.name);
    }
    let booked: u128 = ["r1", "r2"]
        .iter()
        .map(|r| m.db().with_conn(|c| db::outbox::booked_total(c, r, db::outbox::BookedKind::Penalty)).unwrap())
        .sum();
    assert_eq!(booked, 0, "the daemon booked no penalty");
    eprintln!("whole test: {:.1} s", started.elapsed().as_secs_f64());
}
