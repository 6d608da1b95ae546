//! zkpow: a decentralized ZK prover network. Miners turn the sequences
//! rollups post on their base chains into Groth16 proofs and submit them
//! with a two-step commit–reveal.
pub mod aggregator;
pub mod api;
pub mod chain;
pub mod circuit;
pub mod config;
pub mod db;
pub mod devnet;
pub mod fixtures;
pub mod metrics;
pub mod node;
pub mod prover;
pub mod status;
pub mod telemetry;
pub mod token;
pub mod wire;
