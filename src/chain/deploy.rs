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
/// per chain) whose owner must be the deploying account. The owner of a new
/// deposit contract is the node's first account (`eth_accounts`), which is
/// the deploying account on a development node; see [`deploy_as`].
pub async fn deploy<P: Provider + Clone>(
    provider: P,
    params: &RollupParams,
    deposit: Option<Address>,
) -> anyhow::Result<Deployment> {
    let owner = provider.get_accounts().await.ok().and_then(|a| a.first().copied());
    deploy_inner(provider, owner, params, deposit).await
}

/// As [`deploy`], with the owner of a new deposit contract given: a node
/// that holds no keys (any public one) answers `eth_accounts` with nothing,
/// and the owner must be the account the provider signs with.
pub async fn deploy_as<P: Provider + Clone>(
    provider: P,
    owner: Address,
    params: &RollupParams,
    deposit: Option<Address>,
) -> anyhow::Result<Deployment> {
    deploy_inner(provider, Some(owner), params, deposit).await
}

async fn deploy_inner<P: Provider + Clone>(
    provider: P,
    owner: Option<Address>,
    params: &RollupParams,
    deposit: Option<Address>,
) -> anyhow::Result<Deployment> {
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

/// The EIP-2537 G1ADD precompile.
const BLS12_G1ADD: Address = Address::new([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b]);

/// Fails unless the chain has the EIP-2537 BLS12-381 precompiles, without
/// which every proof is rejected and every revealing miner punished. Adds
/// two points at infinity: a chain with the precompile answers with 128 zero
/// bytes, one without it runs no code at that address and answers with none.
pub async fn check_eip2537<P: Provider>(provider: &P) -> anyhow::Result<()> {
    let tx = alloy::rpc::types::TransactionRequest::default().to(BLS12_G1ADD).input(Bytes::from(vec![0u8; 256]).into());
    let out = provider.call(tx).await.context("calling the EIP-2537 G1ADD precompile (address 0x0b)")?;
    if out.len() != 128 || out.iter().any(|b| *b != 0) {
        anyhow::bail!(
            "the chain has no EIP-2537 BLS12-381 precompiles (G1ADD at 0x0b answered {} bytes): \
             the verifier contract cannot check proofs there; use a chain at the Prague/Pectra hardfork or later",
            out.len()
        );
    }
    Ok(())
}

/// Adds `amount` wei to a rollup's reward budget in the chain's deposit
/// contract (anyone may fund it; only that rollup can spend it).
pub async fn fund_rewards<P: Provider + Clone>(
    provider: P,
    deposit: Address,
    rollup: Address,
    amount: u128,
) -> anyhow::Result<()> {
    MinerDeposit::new(deposit, provider)
        .fundRewards(rollup)
        .value(U256::from(amount))
        .send()
        .await
        .context("funding rewards")?
        .get_receipt()
        .await
        .context("funding rewards")?;
    Ok(())
}
