//! Deploys a rollup's contracts: the shape's verifier (with its verifying
//! key), the chain's deposit contract (or an existing one) and the rollup,
//! and registers the rollup with the deposit contract.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::Provider;
use anyhow::Context;

use super::bindings::{Groth16BatchVerifier, MinerDeposit, ZkPowRollup};

#[derive(Debug, Clone)]
pub struct RollupParams {
    /// EIP-2537 verifying key of the rollup's circuit shape (1920 bytes).
    pub vk: Vec<u8>,
    pub sequencer: Address,
    pub genesis_root: B256,
    pub batch_size: u64,
    pub t1: u32,
    pub t2: u32,
    pub min_deposit: u128,
    pub reward_per_sequence: u128,
    pub penalty_wrong_proof: u128,
    pub penalty_no_proof: u128,
    /// Unbonding delay of a new deposit contract, in blocks.
    pub unbonding_blocks: u64,
}

impl RollupParams {
    /// The defaults of the contracts (T1 = 20, T2 = 32 blocks) and small
    /// development amounts.
    pub fn dev(vk: Vec<u8>, sequencer: Address, genesis_root: B256, batch_size: u64) -> Self {
        const ETHER: u128 = 1_000_000_000_000_000_000;
        RollupParams {
            vk,
            sequencer,
            genesis_root,
            batch_size,
            t1: 20,
            t2: 32,
            min_deposit: ETHER,
            reward_per_sequence: ETHER / 10,
            penalty_wrong_proof: ETHER / 2,
            penalty_no_proof: ETHER / 4,
            unbonding_blocks: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    pub verifier: Address,
    pub deposit: Address,
    pub rollup: Address,
}

/// Deploys everything; `deposit` reuses an existing deposit contract (one
/// per chain) whose owner must be the deploying account.
pub async fn deploy<P: Provider + Clone>(
    provider: P,
    params: &RollupParams,
    deposit: Option<Address>,
) -> anyhow::Result<Deployment> {
    let owner = provider.get_accounts().await.ok().and_then(|a| a.first().copied());
    let verifier = Groth16BatchVerifier::deploy(provider.clone(), Bytes::from(params.vk.clone()))
        .await
        .context("deploying Groth16BatchVerifier")?;
    let deposit = match deposit {
        Some(a) => a,
        None => {
            let owner = owner.context("the provider has no account to own the deposit contract")?;
            *MinerDeposit::deploy(provider.clone(), owner, params.unbonding_blocks)
                .await
                .context("deploying MinerDeposit")?
                .address()
        }
    };
    let rollup = ZkPowRollup::deploy(
        provider.clone(),
        deposit,
        *verifier.address(),
        params.sequencer,
        params.genesis_root,
        U256::from(params.batch_size),
        params.t1,
        params.t2,
        params.min_deposit,
        params.reward_per_sequence,
        params.penalty_wrong_proof,
        params.penalty_no_proof,
    )
    .await
    .context("deploying ZkPowRollup")?;
    MinerDeposit::new(deposit, provider.clone())
        .registerRollup(*rollup.address())
        .send()
        .await
        .context("registering the rollup with the deposit contract")?
        .get_receipt()
        .await?;
    Ok(Deployment { verifier: *verifier.address(), deposit, rollup: *rollup.address() })
}
