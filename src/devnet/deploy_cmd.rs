//! `zkpow deploy`: puts a rollup on any chain with the EIP-2537 precompiles
//! (the shape's verifier with its verifying key, a deposit contract unless
//! one is given, the rollup) and prints the `[[chains]]` and `[[rollups]]`
//! entries a miner adds to its configuration. The deploying key comes from
//! a file or an environment variable and is never printed.

use std::path::{Path, PathBuf};

use alloy::network::EthereumWallet;
use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use anyhow::Context;

use crate::aggregator::genesis::load_genesis;
use crate::chain::deploy::{check_eip2537, deploy_as, Deployment, RollupParams};
use crate::chain::{load_signer, root_to_b256};
use crate::circuit::encoding::vk_to_bytes;
use crate::circuit::keys::VerifierKey;
use crate::circuit::sample::genesis_accounts;
use crate::circuit::{Shape, StateTree};
use crate::config::{ChainConfig, Config};

#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("key").required(true).args(["key_file", "key_env"])))]
pub struct DeployArgs {
    /// JSON-RPC URL of the chain.
    #[arg(long, value_name = "URL")]
    pub rpc: String,
    /// File holding the deployer's hex private key.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the deployer's hex private key.
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
    /// Circuit shape "K,D" of the rollup.
    #[arg(long, value_name = "K,D")]
    pub shape: Shape,
    /// Directory with the shape's verifying key (default: keys.dir).
    #[arg(long, value_name = "DIR")]
    pub keys_dir: Option<PathBuf>,
    /// Use this MinerDeposit contract (one per chain; the deployer must own it).
    #[arg(long, value_name = "ADDR")]
    pub deposit: Option<Address>,
    /// The account allowed to post sequences (default: the deployer).
    #[arg(long, value_name = "ADDR")]
    pub sequencer: Option<Address>,
    /// Genesis accounts; written with development accounts when the file does
    /// not exist (default: genesis-NAME.json).
    #[arg(long, value_name = "FILE")]
    pub genesis_file: Option<PathBuf>,
    /// Refuse unless the chain has this id.
    #[arg(long, value_name = "ID")]
    pub chain_id: Option<u64>,
    /// Rollup name in the configuration snippet.
    #[arg(long, default_value = "rollup")]
    pub name: String,
    /// Chain name in the configuration snippet.
    #[arg(long, default_value = "l1")]
    pub chain_name: String,
    /// Commit window, blocks.
    #[arg(long, default_value_t = 20)]
    pub t1: u32,
    /// Reveal window, blocks.
    #[arg(long, default_value_t = 32)]
    pub t2: u32,
    /// Minimum deposit to commit, wei.
    #[arg(long, value_name = "WEI", default_value_t = 1_000_000_000_000_000_000)]
    pub min_deposit: u128,
    /// Reward per verified sequence, wei.
    #[arg(long, value_name = "WEI", default_value_t = 100_000_000_000_000_000)]
    pub reward: u128,
    /// Penalty for revealing a wrong proof, wei.
    #[arg(long, value_name = "WEI", default_value_t = 500_000_000_000_000_000)]
    pub penalty_wrong_proof: u128,
    /// Penalty for committing and never revealing, wei.
    #[arg(long, value_name = "WEI", default_value_t = 250_000_000_000_000_000)]
    pub penalty_no_proof: u128,
    /// Unbonding delay of a new deposit contract, blocks.
    #[arg(long, value_name = "BLOCKS", default_value_t = 100)]
    pub unbonding_blocks: u64,
    /// Fund the new rollup's reward budget in the deposit contract with this much, wei.
    #[arg(long, value_name = "WEI", default_value_t = 0)]
    pub fund_rewards: u128,
    /// Also write the configuration snippet to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn run(args: DeployArgs, config: &Config) -> anyhow::Result<()> {
    let keys_dir = args.keys_dir.clone().unwrap_or_else(|| config.keys.dir.clone());
    let vk = VerifierKey::load(&keys_dir, args.shape).with_context(|| {
        format!("loading the verifying key of shape {} (make it with `zkpow setup --shape {}`)", args.shape, args.shape)
    })?;
    let key_source = ChainConfig {
        name: args.chain_name.clone(),
        rpc_url: args.rpc.clone(),
        chain_id: 0,
        confirmations: 0,
        key_file: args.key_file.clone(),
        key_env: args.key_env.clone(),
    };
    let signer = load_signer(&key_source)?;
    let deployer = signer.address();
    let url = args.rpc.parse().with_context(|| format!("--rpc {}", args.rpc))?;
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url).erased();
    let chain_id = provider.get_chain_id().await.with_context(|| format!("reading the chain id from {}", args.rpc))?;
    if let Some(want) = args.chain_id {
        anyhow::ensure!(chain_id == want, "{} has chain id {chain_id}, not {want}", args.rpc);
    }
    check_eip2537(&provider).await?;

    let genesis_file =
        args.genesis_file.clone().unwrap_or_else(|| PathBuf::from(format!("genesis-{}.json", args.name)));
    let genesis_file = std::path::absolute(&genesis_file).context("resolving --genesis-file")?;
    if !genesis_file.exists() {
        let accounts = genesis_accounts(args.shape, 8, 1_000_000);
        std::fs::write(&genesis_file, serde_json::to_string(&accounts)? + "\n")
            .with_context(|| format!("writing {}", genesis_file.display()))?;
        eprintln!("wrote development genesis accounts to {}", genesis_file.display());
    }
    let genesis = load_genesis(&genesis_file)?;
    let root = root_to_b256(&StateTree::with_accounts(args.shape.d, genesis).root());

    let params = RollupParams {
        vk: vk_to_bytes(&vk.vk)?,
        sequencer: args.sequencer.unwrap_or(deployer),
        genesis_root: root,
        batch_size: args.shape.batch_bytes() as u64,
        t1: args.t1,
        t2: args.t2,
        min_deposit: args.min_deposit,
        reward_per_sequence: args.reward,
        penalty_wrong_proof: args.penalty_wrong_proof,
        penalty_no_proof: args.penalty_no_proof,
        unbonding_blocks: args.unbonding_blocks,
    };
    tracing::info!(chain_id, %deployer, shape = %args.shape, "deploying");
    let dep = deploy_as(provider.clone(), deployer, &params, args.deposit).await?;
    if args.fund_rewards > 0 {
        crate::chain::deploy::fund_rewards(provider.clone(), dep.deposit, dep.rollup, args.fund_rewards).await?;
    }
    let snippet = snippet(&args, chain_id, &dep, &genesis_file, &format!("0x{}", hex::encode(vk.vk_hash)));
    print!("{snippet}");
    if let Some(out) = &args.out {
        std::fs::write(out, &snippet).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn snippet(args: &DeployArgs, chain_id: u64, dep: &Deployment, genesis: &Path, vk_hash: &str) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    format!(
        "# zkpow deploy: shape {shape}, vk hash {vk_hash}\n\
         # Groth16BatchVerifier {verifier}\n\
         # MinerDeposit {deposit} (bond with its deposit() function)\n\
         # ZkPowRollup {rollup}\n\n\
         [[chains]]\nname = {chain}\nrpc_url = {rpc}\nchain_id = {chain_id}\nconfirmations = 2\n\
         # The miner's signing key: one of\n# key_file = \"miner.key\"\n# key_env = \"MINER_KEY\"\n\n\
         [[rollups]]\nname = {name}\nchain = {chain}\naddress = \"{rollup}\"\nshape = \"{shape}\"\ngenesis_file = {genesis}\n",
        shape = args.shape,
        verifier = dep.verifier,
        deposit = dep.deposit,
        rollup = dep.rollup,
        chain = quote(&args.chain_name),
        rpc = quote(&args.rpc),
        name = quote(&args.name),
        genesis = quote(&genesis.display().to_string()),
    )
}
