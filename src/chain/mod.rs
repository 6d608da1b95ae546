//! The base-chain side: contract bindings generated from the committed
//! artifacts, and deployment of the verifier, deposit and rollup contracts.
pub mod bindings;
pub mod deploy;
pub mod txmanager;
pub mod watcher;

use alloy::primitives::{Address, B256, U256};

use crate::circuit::public::{fr_from_be, fr_to_be};
use crate::circuit::Fr;

/// A state root as the contracts store it.
pub fn root_to_b256(f: &Fr) -> B256 {
    B256::from(fr_to_be(f))
}

/// `None` when the word is not a canonical scalar.
pub fn b256_to_root(b: &B256) -> Option<Fr> {
    fr_from_be(&b.0)
}

pub fn address_bytes(a: &Address) -> [u8; 20] {
    a.0 .0
}

/// Contract-side proof hash: `keccak256(abi.encodePacked(keccak256(proof), miner))`.
pub fn proof_hash(proof: &[u8], miner: &Address) -> B256 {
    let inner = alloy::primitives::keccak256(proof);
    let mut buf = Vec::with_capacity(52);
    buf.extend_from_slice(inner.as_slice());
    buf.extend_from_slice(miner.as_slice());
    alloy::primitives::keccak256(buf)
}

pub fn u256_words(words: &[[u8; 32]]) -> Vec<U256> {
    words.iter().map(|w| U256::from_be_bytes(*w)).collect()
}

/// The miner's signing key from the chain's `key_file` or `key_env`. The key
/// itself is never logged or printed.
pub fn load_signer(chain: &crate::config::ChainConfig) -> anyhow::Result<alloy::signers::local::PrivateKeySigner> {
    use anyhow::Context;
    let raw = match (&chain.key_file, &chain.key_env) {
        (Some(path), None) => std::fs::read_to_string(path)
            .with_context(|| format!("chain {}: reading key_file {}", chain.name, path.display()))?,
        (None, Some(var)) => std::env::var(var)
            .with_context(|| format!("chain {}: environment variable {var} (key_env) is not set", chain.name))?,
        _ => anyhow::bail!("chain {}: set exactly one of key_file and key_env", chain.name),
    };
    raw.trim()
        .trim_start_matches("0x")
        .parse::<alloy::signers::local::PrivateKeySigner>()
        .map_err(|_| anyhow::anyhow!("chain {}: the private key is not 32 bytes of hex", chain.name))
}
