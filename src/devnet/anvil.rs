//! Local chains: the pinned anvil from `tools/evm` (`make tools`), bound to
//! 127.0.0.1, mining a block every `block_time` seconds, with its state in a
//! file so a second run resumes the same chain.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;

use super::procs::{ensure_port_free, ChildProc};

/// Where `make tools` installs anvil, relative to the repository root.
pub const PINNED_ANVIL: &str = "tools/evm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";

/// The private keys of anvil's first development accounts (the standard
/// test mnemonic). Public knowledge: never use them on a real chain.
/// 0 deploys and owns, 1 sequences, 2 and 3 mine.
pub const DEV_KEYS: [&str; 4] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

pub fn dev_signer(i: usize) -> anyhow::Result<PrivateKeySigner> {
    DEV_KEYS.get(i).context("no such development account")?.parse().context("development key")
}

/// The anvil binary: `$ANVIL`, else the pinned one under the working
/// directory or under the source tree this binary was built from.
pub fn anvil_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("ANVIL") {
        return Ok(PathBuf::from(p));
    }
    let candidates = [PathBuf::from(PINNED_ANVIL), Path::new(env!("CARGO_MANIFEST_DIR")).join(PINNED_ANVIL)];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .with_context(|| format!("anvil not found at {PINNED_ANVIL}: run `make tools` or set ANVIL to its path"))
}

pub struct ChainSpec {
    pub name: String,
    pub chain_id: u64,
    pub port: u16,
    pub block_time: f64,
    /// anvil's state file: loaded at start when present, written on exit
    /// and every few seconds.
    pub state: PathBuf,
    pub log: PathBuf,
}

/// A running anvil.
pub struct Chain {
    pub name: String,
    pub chain_id: u64,
    pub url: String,
    pub proc: ChildProc,
}

impl Chain {
    pub async fn start(spec: &ChainSpec) -> anyhow::Result<Chain> {
        ensure_port_free(spec.port, &format!("chain {}", spec.name))?;
        let mut cmd = Command::new(anvil_binary()?);
        cmd.args(["--host", "127.0.0.1", "--port", &spec.port.to_string()])
            .args(["--chain-id", &spec.chain_id.to_string()])
            .args(["--block-time", &spec.block_time.to_string()])
            .args(["--accounts", "10", "--balance", "10000"])
            .arg("--state")
            .arg(&spec.state)
            // anvil writes the state on SIGTERM too; the interval bounds the
            // loss if it is killed.
            .args(["--state-interval", "5"]);
        let proc = ChildProc::spawn(&format!("anvil {}", spec.name), cmd, &spec.log)?;
        let chain = Chain {
            name: spec.name.clone(),
            chain_id: spec.chain_id,
            url: format!("http://127.0.0.1:{}", spec.port),
            proc,
        };
        chain.wait_ready(Duration::from_secs(30)).await?;
        Ok(chain)
    }

    async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let provider = self.reader()?;
        let start = Instant::now();
        loop {
            match provider.get_chain_id().await {
                Ok(id) if id == self.chain_id => return Ok(()),
                Ok(id) => anyhow::bail!(
                    "chain {}: anvil reports chain id {id}, expected {} (a state file of another chain?)",
                    self.name,
                    self.chain_id
                ),
                Err(_) if start.elapsed() < limit => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => anyhow::bail!(
                    "chain {}: anvil did not answer at {} within {limit:?}: {e}\n{}",
                    self.name,
                    self.url,
                    self.proc.log_tail(20)
                ),
            }
        }
    }

    pub fn reader(&self) -> anyhow::Result<DynProvider> {
        Ok(ProviderBuilder::new().connect_http(self.url.parse().context("chain url")?).erased())
    }

    /// A provider that signs with development account `i`.
    pub fn wallet(&self, i: usize) -> anyhow::Result<(Address, DynProvider)> {
        let signer = dev_signer(i)?;
        let addr = signer.address();
        let p = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(self.url.parse().context("chain url")?)
            .erased();
        Ok((addr, p))
    }
}
