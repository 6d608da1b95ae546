//! The contracts on a real anvil node with real Groth16 proofs of the
//! smallest shape: deploy, post a 3-batch sequence, prove, commit, reveal.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::DynProvider;
use rand::SeedableRng;
use zkpow::chain::bindings::{MinerDeposit, ZkPowRollup};
use zkpow::chain::deploy::{deploy, Deployment, RollupParams};
use zkpow::chain::{address_bytes, proof_hash, root_to_b256};
use zkpow::circuit::batch::encode;
use zkpow::circuit::encoding::vk_to_bytes;
use zkpow::circuit::executor::apply_batch;
use zkpow::circuit::keys::cached_test_keys;
use zkpow::circuit::public::domain;
use zkpow::circuit::sample::{genesis_accounts, random_transfers};
use zkpow::circuit::{BatchWitness, Shape, StateTree};
use zkpow::prover::{Groth16Backend, ProverBackend};
use zkpow::wire::proof::ProofRequest;

use crate::common::anvil::{block_number, mine, spawn, wallet};

const ETHER: u128 = 1_000_000_000_000_000_000;

struct Net {
    _anvil: alloy::node_bindings::AnvilInstance,
    owner: DynProvider,
    sequencer: DynProvider,
    miners: Vec<(Address, DynProvider)>,
    dep: Deployment,
    params: RollupParams,
    backend: Groth16Backend,
    chain_id: u64,
    witnesses: Vec<BatchWitness>,
    state: StateTree,
}

impl Net {
    async fn new() -> Net {
        let anvil = spawn();
        let chain_id = anvil.chain_id();
        let (_, owner) = wallet(&anvil, 0);
        let (seq_addr, sequencer) = wallet(&anvil, 1);
        let miners = (2..5).map(|i| wallet(&anvil, i)).collect::<Vec<_>>();
        let shape = Shape::TEST;
        let keys = cached_test_keys(shape).expect("test keys");
        let vk = vk_to_bytes(&keys.params.vk).unwrap();
        let state = StateTree::with_accounts(shape.d, genesis_accounts(shape, 8, 1_000_000));
        let params = RollupParams::dev(vk, seq_addr, root_to_b256(&state.root()), shape.batch_bytes() as u64);
        let dep = deploy(owner.clone(), &params, None).await.expect("deploy");
        let deposit = MinerDeposit::new(dep.deposit, owner.clone());
        deposit
            .fundRewards(dep.rollup)
            .value(U256::from(10 * ETHER))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        // Miners 0 and 1 deposit 3 and 1 ether: rewards split 3:1.
        for (i, amount) in [(0usize, 3 * ETHER), (1, ETHER), (2, ETHER)] {
            MinerDeposit::new(dep.deposit, miners[i].1.clone())
                .deposit()
                .value(U256::from(amount))
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
        }
        Net {
            _anvil: anvil,
            owner,
            sequencer,
            miners,
            dep,
            params,
            backend: Groth16Backend::new([keys]),
            chain_id,
            witnesses: vec![],
            state,
        }
    }

    fn rollup(&self, who: &DynProvider) -> ZkPowRollup::ZkPowRollupInstance<DynProvider> {
        ZkPowRollup::new(self.dep.rollup, who.clone())
    }

    /// Posts a sequence of `n` random batches and executes it natively.
    async fn post_sequence(&mut self, n: usize) -> (u64, u64) {
        let shape = Shape::TEST;
        let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(self.witnesses.len() as u64 + 11);
        let mut batches = Vec::new();
        for _ in 0..n {
            let ts = random_transfers(&mut rng, shape, &self.state, 8, 0.3);
            let bytes = encode(shape, &ts).unwrap();
            let (w, _) = apply_batch(&mut self.state, shape, &bytes).unwrap();
            self.witnesses.push(w);
            batches.push(Bytes::from(bytes));
        }
        let rollup = self.rollup(&self.sequencer);
        rollup.sequenceBatches(batches).send().await.unwrap().get_receipt().await.unwrap();
        let last = rollup.lastBatch().call().await.unwrap();
        (last - n as u64 + 1, last)
    }

    /// Proves batches `first..=last` for `miner`: (payload, intermediate roots, final root).
    fn prove(&self, first: u64, last: u64, miner: Address) -> (Vec<u8>, Vec<B256>, B256) {
        let dom = domain(self.chain_id, &address_bytes(&self.dep.rollup));
        let mut payload = Vec::new();
        let mut roots = Vec::new();
        for num in first..=last {
            let w = self.witnesses[(num - 1) as usize].clone();
            roots.push(root_to_b256(&w.new_root));
            let out = self
                .backend
                .prove(&ProofRequest { witness: w, domain: dom, batch_num: num, miner: address_bytes(&miner) })
                .unwrap();
            payload.extend_from_slice(&out.proof);
        }
        let final_root = roots.pop().unwrap();
        (payload, roots, final_root)
    }

    async fn commit(&self, m: usize, first: u64, last: u64, payload: &[u8]) {
        let (addr, p) = &self.miners[m];
        self.rollup(p)
            .submitProofHash(first, last, proof_hash(payload, addr))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }

    async fn reveal_call(
        &self,
        m: usize,
        first: u64,
        last: u64,
        proof: &(Vec<u8>, Vec<B256>, B256),
    ) -> Result<bool, alloy::contract::Error> {
        self.rollup(&self.miners[m].1)
            .verifyBatches(first, last, proof.2, proof.1.clone(), Bytes::from(proof.0.clone()))
            .call()
            .await
    }

    async fn reveal(&self, m: usize, first: u64, last: u64, proof: &(Vec<u8>, Vec<B256>, B256)) -> bool {
        let r = self.rollup(&self.miners[m].1);
        let receipt = r
            .verifyBatches(first, last, proof.2, proof.1.clone(), Bytes::from(proof.0.clone()))
            .gas(5_000_000)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "reveal reverted");
        receipt.decoded_log::<ZkPowRollup::Punished>().is_none()
    }

    async fn deposit_of(&self, m: usize) -> u128 {
        MinerDeposit::new(self.dep.deposit, self.owner.clone()).depositOf(self.miners[m].0).call().await.unwrap().to()
    }

    async fn last_verified(&self) -> u64 {
        self.rollup(&self.owner).lastVerifiedBatch().call().await.unwrap()
    }
}

fn revert_name(e: &alloy::contract::Error) -> String {
    match e.as_decoded_interface_error::<ZkPowRollup::ZkPowRollupErrors>() {
        Some(err) => format!("{err:?}"),
        None => format!("undecoded: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_batch_sequence_is_verified_and_rewarded() {
    let mut net = Net::new().await;
    let (first, last) = net.post_sequence(3).await;
    assert_eq!((first, last), (1, 3));
    let proof_a = net.prove(first, last, net.miners[0].0);
    let proof_b = net.prove(first, last, net.miners[1].0);
    net.commit(0, first, last, &proof_a.0).await;
    net.commit(1, first, last, &proof_b.0).await;

    // Reveal before T1 ends reverts, without a penalty.
    let early = net.reveal_call(0, first, last, &proof_a).await.unwrap_err();
    assert!(revert_name(&early).contains("RevealTooEarly"), "{}", revert_name(&early));

    mine(&net.owner, net.params.t1 as u64).await;
    assert!(net.reveal(0, first, last, &proof_a).await, "valid proof must be accepted");
    assert_eq!(net.last_verified().await, 3);
    let root = net.rollup(&net.owner).stateRoot().call().await.unwrap();
    assert_eq!(root, root_to_b256(&net.state.root()), "on-chain root equals the native executor's");
    // A second committer's valid proof after verification still counts.
    assert!(net.reveal(1, first, last, &proof_b).await);

    // Rewards are claimable after the window: 3:1 by deposit.
    let early_claim = net.rollup(&net.miners[0].1).claimReward(first).call().await.unwrap_err();
    assert!(revert_name(&early_claim).contains("WindowNotEnded"));
    mine(&net.owner, net.params.t2 as u64).await;
    let deposit = MinerDeposit::new(net.dep.deposit, net.owner.clone());
    for m in [0, 1] {
        net.rollup(&net.miners[m].1).claimReward(first).send().await.unwrap().get_receipt().await.unwrap();
    }
    let reward = net.params.reward_per_sequence;
    let a = deposit.rewardsOf(net.miners[0].0).call().await.unwrap();
    let b = deposit.rewardsOf(net.miners[1].0).call().await.unwrap();
    assert_eq!(a.to::<u128>(), reward * 3 / 4);
    assert_eq!(b.to::<u128>(), reward / 4);
    assert_eq!(net.deposit_of(0).await, 3 * ETHER, "nobody honest is punished");
    assert_eq!(net.deposit_of(1).await, ETHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_proof_is_punished_and_state_does_not_advance() {
    let mut net = Net::new().await;
    let (first, last) = net.post_sequence(3).await;
    let mut proof = net.prove(first, last, net.miners[0].0);
    // Swap A and C of the second batch proof: valid points, invalid proof.
    let (a, c) = (proof.0[512..640].to_vec(), proof.0[896..1024].to_vec());
    proof.0[512..640].copy_from_slice(&c);
    proof.0[896..1024].copy_from_slice(&a);
    net.commit(0, first, last, &proof.0).await;
    mine(&net.owner, net.params.t1 as u64).await;
    assert!(!net.reveal(0, first, last, &proof).await, "tampered proof must be rejected");
    assert_eq!(net.last_verified().await, 0);
    assert_eq!(net.deposit_of(0).await, 3 * ETHER - net.params.penalty_wrong_proof);
}

#[tokio::test(flavor = "multi_thread")]
async fn copied_proof_is_worthless_and_non_committers_cannot_reveal() {
    let mut net = Net::new().await;
    let (first, last) = net.post_sequence(3).await;
    let proof_a = net.prove(first, last, net.miners[0].0);
    net.commit(0, first, last, &proof_a.0).await;
    // Miner 1 obtains miner 0's proof bytes and commits to them under its own address.
    net.commit(1, first, last, &proof_a.0).await;
    mine(&net.owner, net.params.t1 as u64).await;

    // Miner 2 never committed.
    let err = net.reveal_call(2, first, last, &proof_a).await.unwrap_err();
    assert!(revert_name(&err).contains("NotCommitter"), "{}", revert_name(&err));

    assert!(net.reveal(0, first, last, &proof_a).await);
    // The copy fails: the miner public input is miner 1's address, not miner 0's.
    assert!(!net.reveal(1, first, last, &proof_a).await, "a copied proof must fail");
    assert_eq!(net.deposit_of(1).await, ETHER - net.params.penalty_wrong_proof.min(ETHER));
    assert_eq!(net.deposit_of(0).await, 3 * ETHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn reveal_after_the_window_reverts() {
    let mut net = Net::new().await;
    let (first, last) = net.post_sequence(1).await;
    let proof = net.prove(first, last, net.miners[0].0);
    net.commit(0, first, last, &proof.0).await;
    let opened = block_number(&net.owner).await;
    mine(&net.owner, (net.params.t1 + net.params.t2) as u64).await;
    assert!(block_number(&net.owner).await >= opened + (net.params.t1 + net.params.t2) as u64);
    let err = net.reveal_call(0, first, last, &proof).await.unwrap_err();
    assert!(revert_name(&err).contains("RevealPhaseOver"), "{}", revert_name(&err));
    assert_eq!(net.last_verified().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_committer_whose_predecessor_stays_unverified_is_not_punished_and_reveals_after_it() {
    let mut net = Net::new().await;
    let (s_first, s_last) = net.post_sequence(1).await;
    let (n_first, n_last) = net.post_sequence(2).await;
    let proof_s = net.prove(s_first, s_last, net.miners[0].0);
    let proof_n = net.prove(n_first, n_last, net.miners[1].0);
    let rollup = net.rollup(&net.owner);

    // Miner 1 commits to S+1 while nobody has committed to S yet.
    net.commit(1, n_first, n_last, &proof_n.0).await;
    let locked = MinerDeposit::new(net.dep.deposit, net.owner.clone()).lockedOf(net.miners[1].0).call().await.unwrap();
    assert_eq!(locked.to::<u128>(), net.params.penalty_wrong_proof.max(net.params.penalty_no_proof), "bond locked");

    // Its T1 and far more than a T2 pass with S unverified: the reveal phase
    // has not started, so it can neither reveal nor be punished.
    mine(&net.owner, (net.params.t1 + 2 * net.params.t2) as u64).await;
    let ws = rollup.windowStatus(n_first).call().await.unwrap();
    assert_eq!(ws.phase, 5, "AwaitingPredecessor");
    let err = net.reveal_call(1, n_first, n_last, &proof_n).await.unwrap_err();
    assert!(revert_name(&err).contains("PredecessorNotVerified"), "{}", revert_name(&err));
    let err = rollup.settleNoProof(n_first, net.miners[1].0).call().await.unwrap_err();
    assert!(revert_name(&err).contains("WindowNotEnded"), "{}", revert_name(&err));
    let err = rollup.resetWindow(n_first).call().await.unwrap_err();
    assert!(revert_name(&err).contains("WindowNotExpired"), "{}", revert_name(&err));

    // S is committed, revealed and verified; S+1's reveal phase starts in
    // that very block and its committer reveals.
    net.commit(0, s_first, s_last, &proof_s.0).await;
    mine(&net.owner, net.params.t1 as u64).await;
    assert!(net.reveal(0, s_first, s_last, &proof_s).await);
    let verified_at = rollup.verifiedAtBlock(s_last).call().await.unwrap();
    let ws = rollup.windowStatus(n_first).call().await.unwrap();
    assert_eq!(ws.phase, 3, "Reveal");
    assert_eq!(ws.revealStart, verified_at);
    assert_eq!(ws.revealEnd, verified_at + net.params.t2 as u64);
    assert!(net.reveal(1, n_first, n_last, &proof_n).await, "valid late-phase reveal accepted");
    assert_eq!(net.last_verified().await, n_last);
    assert_eq!(net.deposit_of(1).await, ETHER, "not punished");
    let locked = MinerDeposit::new(net.dep.deposit, net.owner.clone()).lockedOf(net.miners[1].0).call().await.unwrap();
    assert!(locked.is_zero(), "bond released by the valid reveal");
    assert_eq!(rollup.stateRoot().call().await.unwrap(), root_to_b256(&net.state.root()));
}
