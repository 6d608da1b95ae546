//! A real anvil node per test, from the pinned toolchain (`make tools`).

use std::path::PathBuf;

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

pub fn anvil_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ANVIL") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tools/evm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(p.exists(), "anvil not found at {}: run `make tools` (or set ANVIL)", p.display());
    p
}

/// anvil with automine; tests move time with [`mine`].
pub fn spawn() -> AnvilInstance {
    Anvil::at(anvil_path()).args(["--accounts", "10", "--balance", "1000"]).spawn()
}

pub fn signer(anvil: &AnvilInstance, i: usize) -> PrivateKeySigner {
    PrivateKeySigner::from_signing_key(anvil.keys()[i].clone().into())
}

/// A provider that signs with anvil's account `i`.
pub fn wallet(anvil: &AnvilInstance, i: usize) -> (Address, DynProvider) {
    let s = signer(anvil, i);
    let addr = s.address();
    let p = ProviderBuilder::new().wallet(EthereumWallet::from(s)).connect_http(anvil.endpoint_url());
    (addr, p.erased())
}

pub async fn mine(provider: &DynProvider, blocks: u64) {
    let _: serde_json::Value =
        provider.raw_request("anvil_mine".into(), (U256::from(blocks),)).await.expect("anvil_mine");
}

pub async fn block_number(provider: &DynProvider) -> u64 {
    provider.get_block_number().await.expect("eth_blockNumber")
}
