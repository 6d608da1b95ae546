//! The chain watcher against a real anvil node: confirmed sequences with
//! their batch bytes, paging, and a reorg deeper than the confirmations.

use alloy::primitives::{Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use zkpow::chain::bindings::ZkPowRollup;
use zkpow::chain::deploy::{deploy, RollupParams};
use zkpow::chain::root_to_b256;
use zkpow::chain::watcher::{Cursor, Poll, PostedSequence, Watcher};
use zkpow::circuit::encoding::vk_to_bytes;
use zkpow::circuit::keys::cached_test_keys;
use zkpow::circuit::{Shape, StateTree};

use crate::common::anvil::{mine, spawn, wallet};

async fn post(rollup: &ZkPowRollup::ZkPowRollupInstance<DynProvider>, batches: &[Vec<u8>]) {
    let b: Vec<Bytes> = batches.iter().cloned().map(Bytes::from).collect();
    rollup.sequenceBatches(b).send().await.unwrap().get_receipt().await.unwrap();
}

fn batch(tag: u8) -> Vec<u8> {
    let mut b = vec![0u8; Shape::TEST.batch_bytes()];
    b[3] = tag;
    b[7] = tag.wrapping_add(1);
    b[15] = 5;
    b
}

async fn drain(w: &Watcher<DynProvider>, mut cursor: Option<Cursor>) -> (Vec<PostedSequence>, Option<Cursor>) {
    let mut all = Vec::new();
    loop {
        match w.poll(cursor, 1).await.unwrap() {
            Poll::Idle => return (all, cursor),
            Poll::Progress { sequences, cursor: c } => {
                all.extend(sequences);
                cursor = Some(c);
            }
            Poll::Reorg { .. } => panic!("unexpected reorg"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watcher_reads_confirmed_sequences_and_detects_reorgs() {
    let anvil = spawn();
    let (_, owner) = wallet(&anvil, 0);
    let (seq_addr, sequencer) = wallet(&anvil, 1);
    let keys = cached_test_keys(Shape::TEST).unwrap();
    let genesis = StateTree::new(Shape::TEST.d);
    let params = RollupParams::dev(
        vk_to_bytes(&keys.params.vk).unwrap(),
        seq_addr,
        root_to_b256(&genesis.root()),
        Shape::TEST.batch_bytes() as u64,
    );
    let dep = deploy(owner.clone(), &params, None).await.unwrap();
    let rollup = ZkPowRollup::new(dep.rollup, sequencer.clone());

    post(&rollup, &[batch(1), batch(2)]).await;
    post(&rollup, &[batch(3)]).await;
    let watcher = Watcher::new(owner.clone(), vec![dep.rollup], 2).with_max_range(3);

    // Neither is 2 blocks deep yet; after one more block only the first is.
    let (seen, _) = drain(&watcher, None).await;
    assert!(seen.is_empty(), "unconfirmed sequences must not be reported");
    mine(&owner, 1).await;
    let (seen, _) = drain(&watcher, None).await;
    assert_eq!(seen.len(), 1, "only the confirmed sequence is reported");
    mine(&owner, 1).await;
    let (seen, cursor) = drain(&watcher, None).await;
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].init_batch, seen[0].final_batch), (1, 2));
    assert_eq!(seen[0].batches, vec![batch(1), batch(2)]);
    assert_eq!((seen[1].init_batch, seen[1].final_batch), (3, 3));
    assert_eq!(seen[1].batches, vec![batch(3)]);
    assert!(seen[0].l1_block < seen[1].l1_block);
    let cursor = cursor.unwrap();

    // Resuming from the cursor finds nothing new.
    assert_eq!(watcher.poll(Some(cursor), 1).await.unwrap(), Poll::Idle);

    // A sequence that is later reorganised away.
    let snapshot: U256 = owner.raw_request("evm_snapshot".into(), ()).await.unwrap();
    post(&rollup, &[batch(9)]).await;
    mine(&owner, 3).await;
    let (seen, cursor) = drain(&watcher, Some(cursor)).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].batches, vec![batch(9)]);
    let cursor = cursor.unwrap();
    let reverted: bool = owner.raw_request("evm_revert".into(), (snapshot,)).await.unwrap();
    assert!(reverted);
    // A fresh provider: the old one caches the sequencer's now-stale nonce.
    let (_, sequencer) = wallet(&anvil, 1);
    post(&ZkPowRollup::new(dep.rollup, sequencer), &[batch(7)]).await;
    mine(&owner, 6).await;
    match watcher.poll(Some(cursor), 1).await.unwrap() {
        Poll::Reorg { rewind_to } => assert!(rewind_to < seen[0].l1_block),
        other => panic!("expected a reorg, got {other:?}"),
    }
    // Re-scanning from the start sees the canonical history.
    let (seen, _) = drain(&watcher, None).await;
    let last = seen.last().unwrap();
    assert_eq!((last.init_batch, last.batches.clone()), (4, vec![batch(7)]));
    let block_hash = owner.get_block_by_number(last.l1_block.into()).await.unwrap().unwrap().header.hash;
    assert_eq!(block_hash, last.l1_block_hash);
}
