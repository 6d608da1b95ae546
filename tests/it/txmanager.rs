//! The transaction manager against anvil with mining under the test's
//! control: fee bumps of a stuck transaction, resumption after a crash
//! without a second send, and reverts caught before sending.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::sol_types::SolCall;
use zkpow::chain::bindings::ZkPowRollup;
use zkpow::chain::txmanager::{RevertKind, TxError, TxManager, TxRequest};
use zkpow::config::SenderConfig;
use zkpow::db::{self, Db, TxPurpose, TxStatus};

use crate::common::anvil::{mine, signer, spawn};
use crate::common::net::deploy_rollup;

const CHAIN_ID: u64 = 31337;

fn manager(db: &Db, anvil: &alloy::node_bindings::AnvilInstance, cfg: SenderConfig) -> TxManager {
    let provider: DynProvider = ProviderBuilder::new().connect_http(anvil.endpoint_url()).erased();
    TxManager::new(db.clone(), provider, signer(anvil, 5), CHAIN_ID, "l1".into(), 0, cfg)
}

fn request(id: &str, to: Address, calldata: Vec<u8>) -> TxRequest {
    TxRequest {
        id: id.into(),
        purpose: TxPurpose::Claim,
        rollup: "r1".into(),
        init_batch: 1,
        window_id: 1,
        to,
        calldata: Bytes::from(calldata),
    }
}

async fn set_automine(p: &DynProvider, on: bool) {
    let _: serde_json::Value = p.raw_request("evm_setAutomine".into(), (on,)).await.unwrap();
}

async fn run_txmanager(db: Db) {
    let anvil = spawn();
    let p: DynProvider = ProviderBuilder::new().connect_http(anvil.endpoint_url()).erased();
    let r = deploy_rollup(&anvil, 0, "r1", zkpow::circuit::Shape::TEST, 8, 8, None).await;
    let me = signer(&anvil, 5).address();
    let cfg = SenderConfig { bump_after_blocks: 1, max_fee_per_gas_gwei: 1_000, ..SenderConfig::default() };
    set_automine(&p, false).await;

    // A call that would revert is not sent, and says why.
    let tm = manager(&db, &anvil, cfg.clone());
    let bad = ZkPowRollup::submitProofHashCall { initNumBatch: 7, finalNewBatch: 7, proofHash: B256::ZERO };
    match tm.submit(request("bad", r.dep.rollup, bad.abi_encode())).await {
        Err(TxError::Revert(rev)) => assert_eq!(rev.kind, RevertKind::UnknownSequence, "{rev}"),
        other => panic!("expected a revert, got {other:?}"),
    }
    assert!(db.with_conn(|c| db::outbox::get_tx(c, "bad")).unwrap().is_none(), "nothing recorded");

    // A stuck transaction (the base fee jumps above its max fee) is re-signed
    // with higher fees on the same nonce until it is mined.
    let to = Address::repeat_byte(0x77);
    let tx = tm.submit(request("plain", to, vec![])).await.unwrap();
    assert_eq!(tx.nonce, 0);
    let again = tm.submit(request("plain", to, vec![])).await.unwrap();
    assert_eq!(again, tx, "the same id is the same transaction, not a second one");
    let high = U256::from(tx.max_fee_per_gas * 3);
    let _: serde_json::Value = p.raw_request("anvil_setNextBlockBaseFeePerGas".into(), (high,)).await.unwrap();
    let mut settled = None;
    for _ in 0..60 {
        mine(&p, 1).await;
        if let Some(ev) = tm.monitor().await.unwrap().into_iter().find(|e| e.tx.id == "plain") {
            settled = Some(ev.tx);
            break;
        }
    }
    let settled = settled.expect("the bumped transaction is mined");
    assert_eq!(settled.status, TxStatus::Confirmed);
    assert!(settled.replacements >= 1, "fees were bumped: {settled:?}");
    assert_eq!(settled.hashes.len() as u32, settled.replacements + 1);
    assert!(settled.max_fee_per_gas > tx.max_fee_per_gas);
    assert!(settled.hashes.contains(&settled.mined_hash.unwrap()));
    assert_eq!(p.get_transaction_count(me).await.unwrap(), 1, "one nonce used for all the replacements");

    // A crash after recording and before broadcasting: a new manager on the
    // same database re-broadcasts the very same transaction.
    let recorded = tm.prepare(request("crash", to, vec![])).await.unwrap();
    drop(tm);
    let tm = manager(&db, &anvil, cfg.clone());
    let resumed = tm.submit(request("crash", to, vec![])).await.unwrap();
    assert_eq!(resumed, recorded, "the restarted manager does not sign a second transaction");
    assert!(tm.monitor().await.unwrap().is_empty());
    mine(&p, 1).await;
    let ev = tm.monitor().await.unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].tx.status, TxStatus::Confirmed);
    assert_eq!(ev[0].tx.mined_hash, Some(recorded.tx_hash));
    let next = tm.submit(request("next", to, vec![])).await.unwrap();
    assert_eq!(next.nonce, 2, "no gap, no reuse");
    mine(&p, 1).await;
    tm.monitor().await.unwrap();
    assert_eq!(p.get_transaction_count(me).await.unwrap(), 3);
    let all = db.with_conn(|c| db::outbox::sender_txs(c, CHAIN_ID, &me.0 .0)).unwrap();
    assert_eq!(
        all.iter().map(|t| (t.nonce, t.status)).collect::<Vec<_>>(),
        [(0, TxStatus::Confirmed), (1, TxStatus::Confirmed), (2, TxStatus::Confirmed)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn txmanager_bumps_resumes_and_refuses_reverts_on_postgres() {
    let pg = crate::common::postgres_db();
    run_txmanager(pg.db().clone()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn txmanager_bumps_resumes_and_refuses_reverts_on_sqlite() {
    let (db, _dir) = crate::common::sqlite_db();
    run_txmanager(db).await;
}
