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
use zkpow::db::{self, SubmissionStatus, TxStatus};

use crate::common::anvil::wallet;
use crate::common::net::{bond, deploy_rollup, spawn_chain, wait_for, Miner, MinerChain, Onchain, ETHER};
use crate::common::proxy::Proxy;

const REWARD: u128 = ETHER / 10;
const PENALTY_WRONG_PROOF: u128 = ETHER / 2;
const PENALTY_NO_PROOF: u128 = ETHER / 4;
const LIMIT: Duration = Duration::from_secs(180);

/// The miner's submission of a sequence, once it is done.
fn outcome(m: &Miner, rollup: &str, init: u64) -> Option<String> {
    let s = m.db().with_conn(|c| db::get_submission(c, rollup, init)).ok()??;
    (s.status == SubmissionStatus::Done).then(|| s.outcome.unwrap_or_default())
}

/// Every transaction the miner ever sent on a chain went out once, nonces
/// without gaps, none reverted: no double sends, no wasted gas.
async fn assert_clean_outbox(m: &Miner, on: &Onchain, chain_id: u64) {
    let txs = m.db().with_conn(|c| db::sender_txs(c, chain_id, &m.address.0 .0)).unwrap();
    assert!(!txs.is_empty(), "{}: sent nothing", m.name);
    // The deposit went out before the daemon started.
    let first = txs[0].nonce;
    let nonces: Vec<u64> = txs.iter().map(|t| t.nonce).collect();
    assert_eq!(nonces, (first..first + txs.len() as u64).collect::<Vec<_>>(), "{}: nonces without gaps", m.name);
    assert_eq!(on.nonce(m.address).await, first + txs.len() as u64, "{}: one transaction per outbox row", m.name);
    for t in &txs {
        assert_eq!(t.status, TxStatus::Confirmed, "{}: {} {:?}", m.name, t.id, t.error);
    }
}

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
    let mut b = Miner::new(tmp.path(), "b", 3, &chains, &[&r], "");
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
    // Pro rata to deposit (3:1), for both sequences; nobody honest punished.
    assert_eq!(on.rewards(a.address).await, 2 * REWARD * 3 / 4);
    assert_eq!(on.rewards(b.address).await, 2 * REWARD / 4);
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
    m.agg.as_ref().unwrap().cont();
    wait_for("s2 verified in its second window", LIMIT, &[&m], committed(s2.0, 2)).await;
    wait_for("reveal of s2", LIMIT, &[&m], valid(s2.0)).await;

    // 3. SIGKILL between recording a transaction and its mining.
    let s3 = r.post(1).await;
    let db = m.db();
    wait_for("a transaction for s3 recorded", LIMIT, &[&m], || async {
        let txs = db.with_conn(|c| db::sequence_txs(c, "r1", s3.0)).unwrap();
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
    // The only penalty: the commit to s2's first window that was never revealed.
    assert_eq!(on.deposit_of(me).await, 2 * ETHER - PENALTY_NO_PROOF);
    let penalties: u128 =
        m.db().with_conn(|c| db::list_submissions(c, &[], None)).unwrap().iter().map(|s| s.penalty_wei).sum();
    assert_eq!(penalties, PENALTY_NO_PROOF, "the daemon booked the penalty it received");
    assert_eq!(on.rollup.stateRoot().call().await.unwrap(), root_to_b256(&r.state.root()));
    assert_clean_outbox(&m, &on, 31337).await;
}

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
    let mut m = Miner::new(tmp.path(), "m", 2, &chains, &[&r1, &r2], "");
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
}
