//! zkpow: a decentralized ZK prover network.
pub mod circuit;
